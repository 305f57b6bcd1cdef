# Fine-tuning schedule for EAC segmentation: mmseg's 160k schedule with AdamW
# (lr 1e-4, wd 0.05) and layer-wise lr decay 0.65 through
# EACViT.get_layer_depth (no decay on norms, biases, the core bank and
# alpha), 1500 warmup iterations, then poly decay to 0. For mixed precision
# use the *-amp-* configs or `tools/train.py CONFIG --amp` (AmpOptimWrapper,
# bf16 where the GPU has it; docs/fidelity.md).
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=0.05),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    # mmseg's PolyLR from the end of the warm-up
    dict(_base_.param_scheduler[0], eta_min=0.0, power=1.0, begin=1500)
]
default_hooks = dict(
    checkpoint=dict(type='SafeCheckpointHook', max_keep_ckpts=3))
