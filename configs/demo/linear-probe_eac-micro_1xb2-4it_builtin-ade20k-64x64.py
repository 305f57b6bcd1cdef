# Test-sized linear probe (the backbone of
# upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py, frozen, at 8 cores;
# patch ++ global token -> linear head), used by tests/test_seg_e2e.py.
# Point model.backbone.init_cfg at a trained checkpoint to probe it.
_base_ = '../eac/linear-probe_eac-b_1xb8-40k_ade20k-512x512.py'
crop_size = (64, 64)
embed_dims = 32
data_preprocessor = dict(size=crop_size)
# the backbone's size (replaces the base's arch='b')
arch = dict(embed_dims=embed_dims, num_layers=4, num_heads=2, mlp_ratio=2.0)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch=dict(_delete_=True, **arch),
        patch_size=8,
        max_cores=16,
        num_cores=8,
        frozen_stages=4,
        init_cfg=None),
    decode_head=dict(in_channels=embed_dims),
    test_cfg=dict(_delete_=True, mode='whole'))
# mmseg's pipeline at 64 px, milder jitter, no photometric distortion
train_pipeline = [
    t for t in _base_.train_pipeline if t['type'] != 'PhotoMetricDistortion'
]
train_pipeline[2].update(scale=(256, 64), ratio_range=(0.75, 1.5))
train_pipeline[3].update(crop_size=crop_size)  # RandomCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=(256, 64))  # Resize
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
max_iters = 4
param_scheduler = _base_.param_scheduler
param_scheduler[0].update(end=max_iters)  # PolyLR
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=3))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
