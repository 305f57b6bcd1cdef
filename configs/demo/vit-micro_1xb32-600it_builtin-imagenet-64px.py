# Teacher for the distillation demo: a micro ViT (mmpretrain's
# VisionTransformer, 4 blocks of 96 channels, patch 8) trained as a
# classifier from scratch on the built-in ImageNet-layout data at 64 px, a
# few minutes on 2 CPU cores, with the data, evaluation and runtime of the
# demo's probe config (the paper's ImageNet probe shrunk to 64 px):
#   python tools/misc/make_builtin_data.py imagenet --out data/distill_demo \
#       --size 72 --num-train 600 --num-val 120
#   python tools/train.py \
#       configs/demo/vit-micro_1xb32-600it_builtin-imagenet-64px.py
# configs/demo/distill_eac-micro_vit-teacher_builtin-imagenet-64px.py then
# distils it into a micro EAC (`bash tools/run_distill_demo.sh` runs it all).
_base_ = './linear-probe_eac-micro_1xb32-300it_builtin-imagenet-64px.py'

# the teacher's size
arch = dict(embed_dims=96, num_layers=4, num_heads=4, feedforward_channels=384)
model = dict(
    backbone=dict(
        _delete_=True,
        type='VisionTransformer',
        arch=arch,
        img_size=_base_.crop,
        patch_size=8,
        drop_rate=0.0),
    head=dict(
        type='VisionTransformerClsHead',
        in_channels=96,
        # the head's own default (the base's LinearClsHead has TruncNormal)
        init_cfg=dict(_delete_=True, type='Constant', layer='Linear', val=0)))

max_iters = 600
warmup = 50
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=1e-3,
        weight_decay=0.05,
        betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=False,
        begin=0,
        end=warmup),
    # the base's cosine decay after the warm-up
    dict(
        _base_.param_scheduler[0],
        T_max=max_iters - warmup,
        eta_min=1e-5,
        begin=warmup,
        end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
