# COCO instance segmentation (mmdet's coco_instance.py) with large-scale
# jitter (LSJ) at 1024 px.
#
# Train: random resize of the 1024 x 1024 box by 0.1-2.0 (aspect kept), a
# random 1024 crop (boxes recomputed from the cropped masks, crops without
# objects allowed), tiny boxes dropped, flip, pad to 1024 x 1024 with the
# ImageNet mean colour (BGR 104, 116, 124: 0 after normalisation, the value
# the data preprocessor pads with).
# Test: resize into 1024 x 1024 (aspect kept); the model's data
# preprocessor pads the batch to the 1024 x 1024 canvas
# (`pad_size_divisor=1024` in the Mask R-CNN config). Padding there rather
# than with a `Pad` transform keeps `img_shape` the real image size, so that
# predicted boxes are clipped to the image and never land in the padding.
# Images of any size and aspect ratio go through: sizes need not be
# multiples of the 16 px patch (padding makes them so).
_base_ = 'mmdet::_base_/datasets/coco_instance.py'
image_size = (1024, 1024)
train_pipeline = _base_.train_pipeline[:2] + [
    dict(
        type='RandomResize',
        scale=image_size,
        ratio_range=(0.1, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_type='absolute_range',
        crop_size=image_size,
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=image_size, pad_val=dict(img=(104, 116, 124))),
    dict(type='PackDetInputs')
]
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=image_size)  # Resize, aspect kept
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
