# Distillation demo (the embedded default): a micro EAC (4 blocks of 64
# channels, patch 8, 32 cores, nested dropout over 8/16/24/32) distilled
# from the micro ViT teacher of
# configs/demo/vit-micro_1xb32-600it_builtin-imagenet-64px.py on the built-in
# ImageNet-layout data at 64 px, on the CPU in a few minutes. The student's
# global token is matched to the teacher's CLS token (cosine), its patch
# tokens to the teacher's (cosine + MSE) through a 64 -> 96 projection.
# `bash tools/run_distill_demo.sh` runs teacher, distillation and the
# linear probes that compare the student with a random one.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs512_mae.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)

crop = 64
data_root = 'data/distill_demo/imagenet'
# the teacher config's checkpoint (its default work dir); the demo script
# passes the one it trained with --cfg-options model.teacher_ckpt=...
teacher_ckpt = 'work_dirs/vit-micro_1xb32-600it_builtin-imagenet-64px/' \
    'iter_600.pth'
# the teacher config's backbone, with all its tokens as output
teacher = dict(
    type='VisionTransformer',
    arch=dict(
        embed_dims=96, num_layers=4, num_heads=4, feedforward_channels=384),
    img_size=crop,
    patch_size=8,
    drop_rate=0.0,
    out_type='raw')
student = dict(
    type='EACViT',
    arch=dict(embed_dims=64, num_layers=4, num_heads=2, mlp_ratio=2.0),
    patch_size=8,
    max_cores=32,
    drop_path_rate=0.0)
model = dict(
    type='EACDistiller',
    backbone=student,
    teacher=teacher,
    teacher_ckpt=teacher_ckpt,
    input_size=crop,
    cls_loss_weight=1.0,
    patch_cos_weight=1.0,
    patch_mse_weight=1.0)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=crop,
        crop_ratio_range=(0.35, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]
train_dataloader = dict(
    # a plain dict: the base's carries a `_scope_` key that default_collate
    # would receive as an argument
    collate_fn=dict(_delete_=True, type='default_collate'),
    batch_size=32,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root=data_root, split='train', pipeline=train_pipeline))

max_iters = 600
warmup = 50
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=3.0))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=False,
        begin=0,
        end=warmup),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - warmup,
        eta_min=1e-5,
        by_epoch=False,
        begin=warmup,
        end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='SafeCheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
find_unused_parameters = True  # cores beyond the step's budget get no grad
randomness = dict(seed=0)
