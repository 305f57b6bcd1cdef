# Mask R-CNN, EAC-S backbone (12 layers, 384 dims) + simple feature pyramid,
# LSJ 1024, COCO. Everything else as the EAC-B config.
_base_ = './mask-rcnn_eac-b_fpn_lsj-1024_coco.py'

pretrained = 'checkpoints/eac-s_veca.pth'

model = dict(
    backbone=dict(
        arch='s',
        out_indices=(11, ),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=384))
