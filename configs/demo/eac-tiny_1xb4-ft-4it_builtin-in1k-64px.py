# Tiny ImageNet fine-tuning for demos and tests: a 2-layer, 64-dim EAC
# (16 cores, nested dropout over budgets 8 and 16) trained end to end with
# the full recipe's optimizer (AdamW + layer decay), augmentations and
# Mixup/CutMix, 64 px, 4 iterations, on the built-in ImageNet data.
_base_ = [
    '../eac/eac-b_8xb128-ft-100e_in1k-256px.py', './_base_/demo_parts.py'
]
crop = 64
model = dict(
    backbone=dict(_base_.eac_tiny, drop_path_rate=0.0),
    head=dict(in_channels=64))

# the full recipe's augmentations at 64 px
train_pipeline = _base_.train_pipeline
train_pipeline[1].update(scale=crop)  # RandomResizedCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=73)  # ResizeEdge: 64 / 0.875
test_pipeline[2].update(crop_size=crop)  # CenterCrop
train_dataloader = dict(
    _base_.in_process,
    batch_size=4,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    _base_.in_process, batch_size=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 4
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - 2,
        eta_min=1e-6,
        by_epoch=False,
        begin=2,
        end=max_iters)
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval=2, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
