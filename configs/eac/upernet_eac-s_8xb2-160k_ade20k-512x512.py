# UperNet + EAC-S (D=384) on ADE20K at 512x512; recipe as EAC-B.
_base_ = [
    './upernet_eac-b_8xb2-160k_ade20k-512x512.py',
    '../_base_/models/upernet_eac_sizes.py'
]
model = _base_.upernet_eac_s
