# Distillation demo (the embedded default): a micro EAC (4 blocks of 64
# channels, patch 8, 32 cores, nested dropout over 8/16/24/32) distilled
# from the micro ViT teacher of
# configs/demo/vit-micro_1xb32-600it_builtin-imagenet-64px.py on the built-in
# ImageNet-layout data at 64 px, on the CPU in a few minutes. The student's
# global token is matched to the teacher's CLS token (cosine), its patch
# tokens to the teacher's (cosine + MSE) through a 64 -> 96 projection.
# `bash tools/run_distill_demo.sh` runs teacher, distillation and the
# linear probes that compare the student with a random one. The real
# recipe, distill_eac-b_vit-b-teacher_8xb128-in1k-256px.py, shrunk: same
# losses and optimizer, 600 iterations.
_base_ = '../eac/distill_eac-b_vit-b-teacher_8xb128-in1k-256px.py'

crop = 64
data_root = 'data/distill_demo/imagenet'
# the teacher config's checkpoint (its default work dir); the demo script
# passes the one it trained with --cfg-options model.teacher_ckpt=...
teacher_ckpt = 'work_dirs/vit-micro_1xb32-600it_builtin-imagenet-64px/' \
    'iter_600.pth'
# the student's size (replaces the base's arch='b')
arch = dict(embed_dims=64, num_layers=4, num_heads=2, mlp_ratio=2.0)
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, **arch), patch_size=8, max_cores=32),
    # the teacher config's backbone, with all its tokens as output
    teacher=dict(
        _delete_=True,
        type='VisionTransformer',
        arch=dict(
            embed_dims=96, num_layers=4, num_heads=4,
            feedforward_channels=384),
        img_size=crop,
        patch_size=8,
        drop_rate=0.0,
        out_type='raw'),
    teacher_ckpt=teacher_ckpt,
    teacher_patch_size=None,  # patch 8 as the student: equal grids
    teacher_dtype=None,  # float32
    input_size=crop)

train_pipeline = _base_.train_pipeline
train_pipeline[1].update(scale=crop, crop_ratio_range=(0.35, 1.0))
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler'),
    dataset=dict(data_root=data_root, pipeline=train_pipeline))

# the base's warm-up and cosine decay, per iteration; 600 iterations
max_iters = 600
warmup = 50
optim_wrapper = dict(
    optimizer=dict(lr=1e-3), paramwise_cfg=dict(_delete_=True))
param_scheduler = _base_.param_scheduler
param_scheduler[0].update(start_factor=0.01, end=warmup)  # LinearLR
param_scheduler[1].update(
    T_max=max_iters - warmup, eta_min=1e-5, begin=warmup, end=max_iters)
param_scheduler[0].update(by_epoch=False, convert_to_iter_based=False)
param_scheduler[1].update(by_epoch=False, convert_to_iter_based=False)
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
