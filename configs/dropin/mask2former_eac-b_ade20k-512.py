# Drop-in (seg, multi-scale pixel decoder): mmseg's Mask2Former R-50 recipe
# (shipped in the mmseg wheel) with the ResNet-50 swapped for EAC-B plus
# MultiLevelNeck, which gives the pixel decoder its four levels (strides 4,
# 8, 16, 32) from four EAC blocks. The base imports mmdet.models (Mask2Former
# is mmdet's); the custom_imports below keep that import and add mmeac.
_base_ = [
    'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
    './_base_/eac_parts.py'
]
custom_imports = dict(
    imports=['mmdet.models', 'mmeac'], allow_failed_imports=False)
model = dict(
    backbone=dict(_base_.eac_b_4, _delete_=True),
    neck=_base_.mln,
    decode_head=dict(in_channels=[768] * 4))
# nested dropout: cores outside a step's budget get no gradient
find_unused_parameters = True
