# Teacher for the distillation demo: a micro ViT (mmpretrain's
# VisionTransformer, 4 blocks of 96 channels, patch 8) trained as a
# classifier from scratch on the built-in ImageNet-layout data at 64 px, a
# few minutes on 2 CPU cores:
#   python tools/misc/make_builtin_data.py imagenet --out data/distill_demo \
#       --size 72 --num-train 600 --num-val 120
#   python tools/train.py \
#       configs/demo/vit-micro_1xb32-600it_builtin-imagenet-64px.py
# configs/demo/distill_eac-micro_vit-teacher_builtin-imagenet-64px.py then
# distils it into a micro EAC (`bash tools/run_distill_demo.sh` runs it all).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)

crop = 64
data_root = 'data/distill_demo/imagenet'
teacher_backbone = dict(
    type='VisionTransformer',
    arch=dict(
        embed_dims=96, num_layers=4, num_heads=4, feedforward_channels=384),
    img_size=crop,
    patch_size=8,
    drop_rate=0.0)
model = dict(
    type='ImageClassifier',
    backbone=teacher_backbone,
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=1000,
        in_channels=96,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=crop,
        crop_ratio_range=(0.35, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=crop, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=crop),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_iters = 600
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=1e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - 50,
        eta_min=1e-5,
        by_epoch=False,
        begin=50,
        end=max_iters)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='SafeCheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
