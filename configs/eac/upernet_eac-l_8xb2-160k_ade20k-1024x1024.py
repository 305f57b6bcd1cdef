# UperNet + EAC-L (24 blocks, D=1024) on ADE20K at 1024 x 1024. Levels from
# blocks 8/12/16/24, stochastic depth 0.2, layer decay 0.9 (0.65 ** 25 would
# all but freeze the first blocks of a 24-block model).
_base_ = './upernet_eac-b_ade20k-1024.py'
model = dict(
    backbone=dict(
        arch='l',
        out_indices=(7, 11, 15, 23),
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/eac-l_veca.pth')),
    neck=dict(in_channels=[1024] * 4, out_channels=1024),
    decode_head=dict(in_channels=[1024] * 4),
    auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.9))
