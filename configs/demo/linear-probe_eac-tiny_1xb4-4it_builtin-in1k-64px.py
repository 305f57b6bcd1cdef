# Tiny ImageNet linear probe for demos and tests: a frozen 2-layer, 64-dim
# EAC (16 cores) -> global token -> linear head, 64 px, 4 iterations, on the
# built-in ImageNet data (`python tools/misc/make_builtin_data.py imagenet
# --out data`). Same protocol (SGD, cosine, frozen eval-mode backbone),
# metric and tools as the full config, only smaller. With `init_cfg=None`
# the frozen backbone is random; point `model.backbone.init_cfg` at a
# checkpoint to probe trained weights.
_base_ = [
    '../eac/linear-probe_eac-b_8xb16-12.5k_in1k-256px.py',
    './_base_/demo_parts.py'
]
crop = 64
model = dict(
    backbone=dict(_base_.eac_tiny, frozen_stages=2), head=dict(in_channels=64))

# the probe's pipeline at 64 px
train_pipeline = _base_.train_pipeline
train_pipeline[1].update(scale=crop)  # RandomResizedCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=73)  # ResizeEdge: 64 / 0.875
test_pipeline[2].update(crop_size=crop)  # CenterCrop
train_dataloader = dict(
    _base_.in_process, batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    _base_.in_process, batch_size=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 4
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = _base_.param_scheduler
param_scheduler[0].update(T_max=max_iters, end=max_iters)  # cosine
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=3))
