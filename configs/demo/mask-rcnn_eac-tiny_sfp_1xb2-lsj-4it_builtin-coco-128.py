# Tiny Mask R-CNN with EAC for demos and tests: a 2-layer, 64-dim EAC
# (16 cores, budgets 8 and 16) + simple feature pyramid (sfp), LSJ at 128 px,
# 4 iterations, on the built-in COCO data
# (`python tools/misc/make_builtin_data.py coco --out data`). Same pipeline,
# heads, optimizer (AdamW + layer decay), metric and tools as the full
# config, only smaller; it trains on CPU in seconds.
_base_ = [
    '../eac/mask-rcnn_eac-b_sfp_8xb8-lsj-100e_coco-1024.py',
    './_base_/demo_parts.py'
]

image_size = (128, 128)
data_root = 'data/coco/'
# The six built-in classes (COCO names, in COCO id order).
classes = ('airplane', 'boat', 'sports ball', 'book', 'clock', 'vase')
metainfo = dict(classes=classes)
channels = 64

model = dict(
    data_preprocessor=dict(
        pad_size_divisor=image_size[0],
        batch_augments=[
            dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)
        ]),
    backbone=dict(_base_.eac_tiny, out_indices=(1, ), drop_path_rate=0.0),
    neck=dict(in_channels=64, out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            in_channels=channels,
            fc_out_channels=128,
            num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            num_convs=2,
            in_channels=channels,
            conv_out_channels=channels,
            num_classes=len(classes))),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=20)))

# the LSJ pipeline at 128 px
train_pipeline = _base_.train_pipeline
train_pipeline[2].update(scale=image_size)  # RandomResize
train_pipeline[3].update(crop_size=image_size)  # RandomCrop
train_pipeline[6].update(size=image_size)  # Pad
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=image_size)  # Resize

train_dataloader = dict(
    _base_.in_process,
    batch_size=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        # keep images without objects: training must cope with them
        filter_cfg=dict(filter_empty_gt=False, min_size=0),
        pipeline=train_pipeline))
val_dataloader = dict(
    _base_.in_process,
    batch_size=2,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_iters = 4
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = _base_.param_scheduler
param_scheduler[0].update(start_factor=0.1, end=2)  # LinearLR warm-up
param_scheduler[1].update(end=max_iters, milestones=[3])  # MultiStepLR
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=2, max_keep_ckpts=3),
    visualization=dict(draw=False))
randomness = dict(seed=0)
