# Linear probe of the distillation demo's micro EAC student on the built-in
# ImageNet-layout data at 64 px (the paper's classification protocol, scaled
# down): the frozen student, in eval mode at the budget `num_cores`, gives
# its global token (final core 0) to a linear head trained with SGD
# (momentum 0.9, no weight decay, cosine), 300 iterations of 32 images:
# the paper's probe config, shrunk.
# It loads the distillation checkpoint (EACDistiller keeps the student under
# `backbone.`, which EACViT's Pretrained init reads directly). Probe another
# budget with `--cfg-options model.backbone.num_cores=8`; probe a randomly
# initialised student with `model.backbone.init_cfg=None`.
_base_ = '../eac/linear-probe_eac-b_8xb16-12.5k_in1k-256px.py'

crop = 64
data_root = 'data/distill_demo/imagenet'
# the distillation demo's student (replaces the base's arch='b')
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=64,
            num_layers=4,
            num_heads=2,
            mlp_ratio=2.0),
        patch_size=8,
        max_cores=32,
        num_cores=32,
        frozen_stages=4,  # = num_layers: frozen, eval mode
        init_cfg=dict(
            checkpoint='work_dirs/distill_eac-micro_vit-teacher_builtin-'
            'imagenet-64px/iter_600.pth')),
    head=dict(in_channels=64, topk=(1, )))

# the probe's pipeline at 64 px (test: short side 64, bilinear)
train_pipeline = _base_.train_pipeline
train_pipeline[1].update(scale=crop, crop_ratio_range=(0.35, 1.0))
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=crop, interpolation='bilinear')  # ResizeEdge
test_pipeline[2].update(crop_size=crop)  # CenterCrop
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(topk=(1, ))
test_evaluator = val_evaluator

max_iters = 300
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = _base_.param_scheduler
param_scheduler[0].update(T_max=max_iters, end=max_iters)  # cosine
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
