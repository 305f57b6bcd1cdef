# Mask R-CNN, EAC-S backbone (12 layers, 384 dims) + simple feature pyramid,
# LSJ 1024, COCO. Everything else as the EAC-B config.
_base_ = './mask-rcnn_eac-b_sfp_8xb8-lsj-100e_coco-1024.py'

model = dict(
    backbone=dict(
        arch='s', init_cfg=dict(checkpoint='checkpoints/eac-s_veca.pth')),
    neck=dict(in_channels=384))
