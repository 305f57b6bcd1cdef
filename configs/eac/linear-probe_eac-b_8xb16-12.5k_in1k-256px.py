# ImageNet-1k linear probe of a frozen EAC-B (the paper's protocol): global
# token (final core 0) -> linear head; SGD momentum 0.9, lr 0.05, no weight
# decay, cosine, batch 128 (8 GPUs x 16), 12.5k steps, 256 px.
#
# The backbone stays frozen in eval mode, so it runs at its eval budget
# `num_cores` (64): probe another budget with
# `--cfg-options model.backbone.num_cores=8` (train and test).
#
# Pretrained backbone: convert the authors' checkpoint first,
#   python tools/model_converters/veca2mmeac.py veca_b.pt \
#       checkpoints/eac-b_veca.pth
_base_ = [
    '../_base_/models/eac-b_linear-cls.py',
    '../_base_/datasets/imagenet_bs16_linear-probe-256px.py',
    '../_base_/schedules/cls_sgd-cos-12.5k_imagenet.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)

pretrained = 'checkpoints/eac-b_veca.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)))

# Iteration-based logging and checkpoints (the runtime defaults are by epoch).
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(
        type='SafeCheckpointHook', by_epoch=False, interval=2500,
        max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, diff_rank_seed=True)
