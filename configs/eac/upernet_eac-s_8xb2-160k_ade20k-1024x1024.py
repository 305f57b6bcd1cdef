# UperNet + EAC-S (D=384) on ADE20K at 1024 x 1024.
_base_ = './upernet_eac-b_ade20k-1024.py'
model = dict(
    backbone=dict(
        arch='s',
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-s_veca.pth')),
    neck=dict(in_channels=[384, 384, 384, 384], out_channels=384),
    decode_head=dict(in_channels=[384, 384, 384, 384]),
    auxiliary_head=dict(in_channels=384))
