# Drop-in (seg, multi-scale pixel decoder): mmseg's Mask2Former R-50 recipe
# (shipped in the mmseg wheel) with the ResNet-50 swapped for EAC-B plus
# MultiLevelNeck, which gives the pixel decoder its four levels (strides 4,
# 8, 16, 32) from four EAC blocks. The base imports mmdet.models (Mask2Former
# is mmdet's); the custom_imports below keep that import and add mmeac.
_base_ = ['mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py']
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
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth')),
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[768, 768, 768, 768],
        out_channels=768,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[768, 768, 768, 768]))
find_unused_parameters = True
