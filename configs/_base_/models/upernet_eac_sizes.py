# What turns upernet_eac.py's EAC-B UperNet into EAC-S or EAC-L, shared by
# the 512 and 1024 px configs: each lists its EAC-B config and this file in
# `_base_` and sets `model = _base_.upernet_eac_s` (mmengine merges the dict
# into the inherited model). No other base uses these names, so a config
# only gains these two entries.
#
# EAC-S (D=384): the EAC-B recipe
upernet_eac_s = dict(
    backbone=dict(
        arch='s', init_cfg=dict(checkpoint='checkpoints/eac-s_veca.pth')),
    neck=dict(in_channels=[384] * 4, out_channels=384),
    decode_head=dict(in_channels=[384] * 4),
    auxiliary_head=dict(in_channels=384))
# EAC-L (24 blocks, D=1024): levels from blocks 8/12/16/24, stochastic depth
# 0.2 (the configs also set layer decay 0.9: 0.65 ** 25 would all but freeze
# the first blocks of a 24-block model)
upernet_eac_l = dict(
    backbone=dict(
        arch='l',
        out_indices=(7, 11, 15, 23),
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/eac-l_veca.pth')),
    neck=dict(in_channels=[1024] * 4, out_channels=1024),
    decode_head=dict(in_channels=[1024] * 4),
    auxiliary_head=dict(in_channels=1024))
