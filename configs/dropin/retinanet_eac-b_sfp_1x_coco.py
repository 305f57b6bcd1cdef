# Drop-in (det, single-stage): mmdet's RetinaNet R-50 1x recipe (shipped in
# the mmdet wheel) with the ResNet-50 + FPN swapped for EAC-B + a simple
# feature pyramid at the anchor head's strides (preset 'single_stage': 8,
# 16, 32, 64, 128). The same neck fits FCOS, ATSS, GFL and other dense heads
# whose prior generator has these strides.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', './_base_/eac.py']
model = dict(
    backbone=dict(_base_.eac_b, _delete_=True, out_indices=(11, )),
    neck=dict(_base_.sfp, _delete_=True, preset='single_stage'))
