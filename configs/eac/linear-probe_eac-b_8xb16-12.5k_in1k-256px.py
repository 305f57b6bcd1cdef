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
    '../_base_/models/linear-cls_eac.py',
    '../_base_/datasets/imagenet_bs16_linear-probe-256px.py',
    '../_base_/schedules/sgd_cos-12.5k.py',
    'mmpretrain::_base_/default_runtime.py',
]
# Iteration-based logging and checkpoints (the runtime defaults are by epoch).
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(
        type='SafeCheckpointHook',
        by_epoch=False,
        interval=2500,
        max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, diff_rank_seed=True)
