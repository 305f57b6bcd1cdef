# UperNet + EAC-S (D=384) on ADE20K at 512 x 512; recipe as EAC-B.
_base_ = './upernet_eac-b_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        arch='s', init_cfg=dict(checkpoint='checkpoints/eac-s_veca.pth')),
    neck=dict(in_channels=[384] * 4, out_channels=384),
    decode_head=dict(in_channels=[384] * 4),
    auxiliary_head=dict(in_channels=384))
