# Drop-in (det, DETR-style): mmdet's DINO 4-scale R-50 12e recipe (shipped
# in the mmdet wheel) with the ResNet-50 + ChannelMapper swapped for EAC-B +
# a simple feature pyramid with the four levels the deformable encoder reads
# (preset 'detr': strides 8, 16, 32, 64). Deformable DETR takes it as is.
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py', './_base_/eac.py']
model = dict(
    backbone=dict(_base_.eac_b, _delete_=True, out_indices=(11, )),
    neck=dict(_base_.sfp, _delete_=True, preset='detr'))
