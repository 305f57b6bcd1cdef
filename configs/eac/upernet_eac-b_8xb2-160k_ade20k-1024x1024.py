# OpenMMLab-named alias of upernet_eac-b_ade20k-1024.py (identical settings).
_base_ = './upernet_eac-b_ade20k-1024.py'
