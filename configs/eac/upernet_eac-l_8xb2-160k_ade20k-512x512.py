# UperNet + EAC-L (24 blocks, D=1024) on ADE20K at 512 x 512 (layer decay 0.9).
_base_ = './upernet_eac-b_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        arch='l',
        out_indices=(7, 11, 15, 23),
        drop_path_rate=0.2,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-l_veca.pth')),
    neck=dict(in_channels=[1024, 1024, 1024, 1024], out_channels=1024),
    decode_head=dict(in_channels=[1024, 1024, 1024, 1024]),
    auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.9))
