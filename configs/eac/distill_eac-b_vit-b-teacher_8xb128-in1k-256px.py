# Distillation pretraining of EAC-B (the paper's recipe, in mmpretrain): a
# frozen ViT-B teacher, the student's global token (final core 0) matched to
# the teacher's CLS token (cosine), its patch tokens to the teacher's patch
# tokens (cosine + MSE), under nested dropout over the core budgets
# 8..64 with weights (1, 1, 2, 2, 3, 3, 4, 4), one budget per step, the same
# on every GPU. ImageNet-1k folders, 256 px, 8 GPUs x 128 images.
#
# Teacher: the paper uses DINOv3-B/16, which mmpretrain does not ship; the
# default here is mmpretrain's DINOv2 ViT-B/14. With teacher_patch_size=14
# the teacher sees the image at 224 px, so its 16 x 16 patch grid equals
# the student's at 256 px. Any mmpretrain backbone config + checkpoint can
# replace it (out_type='raw' for mmpretrain ViTs); another patch size or
# resolution is aligned by interpolating the teacher's patch grid.
#
# Schedule: the paper (and the spec) give no pretraining hyper-parameters;
# these are this project's choice: AdamW lr 5e-4 at batch 1024, weight
# decay 0.05, 5 warm-up epochs, cosine to 1e-6, 100 epochs, grad clip 3.
#
#   bash tools/dist_train.sh \
#       configs/eac/distill_eac-b_vit-b-teacher_8xb128-in1k-256px.py 8
# The checkpoint loads into every EAC downstream config as is:
#   model.backbone.init_cfg=dict(type='Pretrained', checkpoint=<iter.pth>)
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs512_mae.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/schedules/adamw_cos-100e.py',
]
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)

crop = 256
teacher_ckpt = 'https://download.openmmlab.com/mmpretrain/v1.0/dinov2/' \
    'vit-base-p14_dinov2-pre_3rdparty_20230426-ba246503.pth'
model = dict(
    type='EACDistiller',
    backbone=dict(
        type='EACViT',
        arch='b',
        patch_size=16,
        max_cores=64,
        drop_path_rate=0.0),
    teacher=dict(
        type='VisionTransformer',
        arch='base',
        img_size=518,
        patch_size=14,
        layer_scale_init_value=1e-5,
        out_type='raw'),
    teacher_ckpt=teacher_ckpt,
    teacher_patch_size=14,
    teacher_dtype='bf16',  # autocast on GPU, ignored on CPU
    input_size=crop,
    proj='auto',  # linear when the widths differ (EAC-S/L), else identity
    cls_loss_weight=1.0,
    patch_cos_weight=1.0,
    patch_mse_weight=1.0)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=crop,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]
train_dataloader = dict(
    # a plain dict: the base's carries a `_scope_` key that default_collate
    # would receive as an argument
    collate_fn=dict(_delete_=True, type='default_collate'),
    batch_size=128,
    num_workers=10,
    dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'core_chunks': dict(decay_mult=0.0),
            'core_coord_chunks': dict(decay_mult=0.0),
        }),
    clip_grad=dict(max_norm=3.0))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=_base_.max_epochs)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
