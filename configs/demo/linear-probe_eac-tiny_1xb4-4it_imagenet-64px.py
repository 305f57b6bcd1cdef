# Tiny ImageNet linear probe for demos and tests: a frozen 2-layer, 64-dim
# EAC (16 cores) -> global token -> linear head, 64 px, 4 iterations, on the
# built-in ImageNet data (`python tools/misc/make_builtin_data.py imagenet
# --out data`). Same protocol (SGD, cosine, frozen eval-mode backbone),
# metric and tools as the full config, only smaller. With `init_cfg=None`
# the frozen backbone is random; point `model.backbone.init_cfg` at a
# checkpoint to probe trained weights.
_base_ = '../eac/linear-probe_eac-b_8xb16-12.5k_in1k-256px.py'

crop = 64
data_root = 'data/imagenet'

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=64,
            num_layers=2,
            num_heads=4,
            mlp_ratio=2.0),
        max_cores=16,
        frozen_stages=2,
        init_cfg=None),
    head=dict(in_channels=64))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=crop,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=73,  # 64 / 0.875
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=crop),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 4
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
        end=max_iters)
]
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=3))
