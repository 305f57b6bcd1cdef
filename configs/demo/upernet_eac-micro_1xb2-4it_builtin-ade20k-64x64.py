# Test-sized EAC UperNet (4 blocks of 32 channels, 16 cores, 64 px crops,
# 4 iterations) on the built-in ADE20K data; used by tests/test_seg_e2e.py.
_base_ = [
    './upernet_eac-tiny_1xb8-400it_builtin-ade20k-128x128.py',
    './_base_/demo_parts.py'
]
embed_dims = 32
arch = dict(embed_dims=embed_dims, num_layers=4, num_heads=2, mlp_ratio=2.0)
crop_size = (64, 64)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch=dict(_delete_=True, **arch),
        max_cores=16,
        out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[embed_dims] * 4, out_channels=embed_dims),
    decode_head=dict(
        in_channels=[embed_dims] * 4, channels=16, pool_scales=(1, 2)))
# the demo pipeline at 64 px, milder jitter, no photometric distortion
train_pipeline = [
    t for t in _base_.train_pipeline if t['type'] != 'PhotoMetricDistortion'
]
train_pipeline[2].update(scale=(256, 64), ratio_range=(0.75, 1.5))
train_pipeline[3].update(crop_size=crop_size)  # RandomCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=(256, 64))  # Resize
train_dataloader = dict(
    _base_.in_process, batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(_base_.in_process, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
max_iters = 4
param_scheduler = _base_.param_scheduler
param_scheduler[0].update(start_factor=0.1, end=2)  # LinearLR warm-up
param_scheduler[1].update(begin=2, end=max_iters)  # PolyLR
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=3))
