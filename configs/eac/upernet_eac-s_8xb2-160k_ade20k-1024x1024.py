# UperNet + EAC-S (D=384) on ADE20K at 1024x1024; recipe as EAC-B.
_base_ = [
    './upernet_eac-b_ade20k-1024.py', '../_base_/models/upernet_eac_sizes.py'
]
model = _base_.upernet_eac_s
