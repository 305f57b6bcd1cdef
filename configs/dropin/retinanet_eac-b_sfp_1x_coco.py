# Drop-in (det, single-stage): mmdet's RetinaNet R-50 1x recipe (shipped in
# the mmdet wheel) with the ResNet-50 + FPN swapped for EAC-B + a simple
# feature pyramid at the anchor head's strides (preset 'single_stage': 8,
# 16, 32, 64, 128). The same neck fits FCOS, ATSS, GFL and other dense heads
# whose prior generator has these strides.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
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
        preset='single_stage',
        in_channels=768,
        out_channels=256))
find_unused_parameters = True
