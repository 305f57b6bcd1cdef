# Linear probe of the distillation demo's micro EAC student on the built-in
# ImageNet-layout data at 64 px (the paper's classification protocol, scaled
# down): the frozen student, in eval mode at the budget `num_cores`, gives
# its global token (final core 0) to a linear head trained with SGD
# (momentum 0.9, no weight decay, cosine), 300 iterations of 32 images.
# It loads the distillation checkpoint (EACDistiller keeps the student under
# `backbone.`, which EACViT's Pretrained init reads directly). Probe another
# budget with `--cfg-options model.backbone.num_cores=8`; probe a randomly
# initialised student with `model.backbone.init_cfg=None`.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)

crop = 64
data_root = 'data/distill_demo/imagenet'
pretrained = 'work_dirs/distill_eac-micro_vit-teacher_builtin-imagenet-64px/' \
    'iter_600.pth'
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='EACViT',
        arch=dict(embed_dims=64, num_layers=4, num_heads=2, mlp_ratio=2.0),
        patch_size=8,
        max_cores=32,
        num_cores=32,
        out_type='cls_token',
        frozen_stages=4,  # = num_layers: frozen, eval mode
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, ),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.01)))

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

max_iters = 300
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0))
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
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
