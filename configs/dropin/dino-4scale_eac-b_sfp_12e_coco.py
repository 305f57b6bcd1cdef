# Drop-in (det, DETR-style): mmdet's DINO 4-scale R-50 12e recipe (shipped
# in the mmdet wheel) with the ResNet-50 + ChannelMapper swapped for EAC-B +
# a simple feature pyramid with the four levels the deformable encoder reads
# (preset 'detr': strides 8, 16, 32, 64). Deformable DETR takes it as is.
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
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
        preset='detr',
        in_channels=768,
        out_channels=256))
find_unused_parameters = True
