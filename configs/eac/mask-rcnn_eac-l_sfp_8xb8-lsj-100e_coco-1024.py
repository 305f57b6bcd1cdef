# Mask R-CNN, EAC-L backbone (24 layers, 1024 dims) + simple feature pyramid,
# LSJ 1024, COCO. As the EAC-B config, with ViTDet's settings for a large
# backbone: stochastic depth 0.4 and layer-wise lr decay 0.8.
_base_ = './mask-rcnn_eac-b_sfp_8xb8-lsj-100e_coco-1024.py'

model = dict(
    backbone=dict(
        arch='l',
        out_indices=(23, ),
        drop_path_rate=0.4,
        init_cfg=dict(checkpoint='checkpoints/eac-l_veca.pth')),
    neck=dict(in_channels=1024))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))
