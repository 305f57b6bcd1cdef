# Drop-in (det, two-stage): mmdet's own Mask R-CNN 1x recipe (ResNet-50 +
# FPN, SGD, 1333x800, shipped in the mmdet wheel) with the ResNet-50 + FPN
# swapped for EAC-B + a simple feature pyramid at the RPN's and RoI heads'
# strides (preset 'two_stage': 4, 8, 16, 32, 64). Everything else (heads,
# data, schedule, metric) is mmdet's. The tuned EAC recipe is
# configs/eac/mask-rcnn_eac-b_sfp_8xb8-lsj-100e_coco-1024.py.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
# mmeac on top of whatever the base imports (a str, a list or nothing)
__base_imports = _base_.get('custom_imports', {}).get('imports', [])
custom_imports = dict(
    imports=([__base_imports] if isinstance(__base_imports, str) else
             list(__base_imports)) + ['mmeac'],
    allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='EACViT',
        arch='b',
        out_indices=(11, ),
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth')),
    neck=dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        preset='two_stage',
        in_channels=768,
        out_channels=256))

# The EAC backbone trains with nested dropout over its cores (cores outside
# a step's budget get no gradient), which DDP must be told about.
find_unused_parameters = True
