# UperNet + EAC-S (D=384) on ADE20K at 512 x 512.
_base_ = './upernet_eac-b_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        arch='s',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-s_veca.pth')),
    neck=dict(in_channels=[384, 384, 384, 384], out_channels=384),
    decode_head=dict(in_channels=[384, 384, 384, 384]),
    auxiliary_head=dict(in_channels=384))
