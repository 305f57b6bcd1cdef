# Drop-in (det, two-stage): mmdet's own Mask R-CNN 1x recipe (ResNet-50 +
# FPN, SGD, 1333x800, shipped in the mmdet wheel) with the ResNet-50 + FPN
# swapped for EAC-B + a simple feature pyramid at the RPN's and RoI heads'
# strides (preset 'two_stage': 4, 8, 16, 32, 64). Everything else (heads,
# data, schedule, metric) is mmdet's. The tuned EAC recipe is
# configs/eac/mask-rcnn_eac-b_sfp_8xb8-lsj-100e_coco-1024.py.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/eac.py']
model = dict(
    backbone=dict(_base_.eac_b, _delete_=True, out_indices=(11, )),
    neck=dict(_base_.sfp, _delete_=True, preset='two_stage'))
