# Mask R-CNN with an EAC-B backbone and a ViTDet-style simple feature pyramid.
#
# mmdet's Mask R-CNN (RPN + RoI box and mask heads) is taken as is; only the
# backbone and the neck change. EAC-B gives one stride-16 patch map (last
# block, final LayerNorm applied); SimpleFeaturePyramid turns it into five
# 256-channel levels (strides 4, 8, 16, 32, 64), the levels the ResNet-FPN
# version feeds to the same heads. In train mode the backbone draws one core
# budget per step (nested dropout, backbone defaults); in eval mode it uses
# `num_cores` (default 64), settable with
# `--cfg-options model.backbone.num_cores=K`.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(
        # ImageNet mean / std in RGB, as the EAC checkpoints expect.
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='EACViT',
        arch='b',
        patch_size=16,
        out_indices=(11, ),
        out_type='featmap',
        final_norm=True,
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth')),
    neck=dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        in_channels=768,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5,
        norm_cfg=dict(type='LN2d', eps=1e-6)))
