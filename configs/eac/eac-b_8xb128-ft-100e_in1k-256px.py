# ImageNet-1k fine-tuning of EAC-B at 256 px: the whole backbone trains with
# layer-wise lr decay 0.65 (AdamW, lr 2e-3 at batch 1024, weight decay 0.05;
# norms, biases and the core bank without decay), stochastic depth 0.1,
# RandAugment + random erasing + Mixup/CutMix + label smoothing, 5 warm-up
# epochs then cosine, 100 epochs. Nested dropout over the core axis stays on
# (backbone default budgets 8..64), so the fine-tuned model keeps every
# budget: test one with `--cfg-options model.backbone.num_cores=16`.
# Mixed precision: `tools/train.py CONFIG --amp`.
_base_ = [
    '../_base_/models/linear-cls_eac.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_256.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/schedules/adamw_cos-100e.py',
]

model = dict(
    backbone=dict(frozen_stages=-1, drop_path_rate=0.1),
    head=dict(
        loss=dict(
            _delete_=True,
            type='LabelSmoothLoss',
            label_smooth_val=0.1,
            mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=2e-5)),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=2e-3),
    paramwise_cfg=dict(layer_decay_rate=0.65))
param_scheduler = _base_.param_scheduler
param_scheduler[0].update(start_factor=1e-4)  # LinearLR warm-up
train_cfg = dict(by_epoch=True, max_epochs=_base_.max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
