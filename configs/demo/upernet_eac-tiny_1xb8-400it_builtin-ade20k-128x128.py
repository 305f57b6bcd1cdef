# Main-job demo: a small EAC UperNet (6 blocks of 128 channels, patch 8, 32
# cores) trained from scratch on the CPU on the built-in ADE20K-format data:
#   python tools/misc/make_builtin_data.py ade20k --out data/demo \
#       --num-train 300 --num-val 50
# 128 x 128 crops, BN heads, nested dropout over 8/16/24/32 cores, 400 iters
# (about 1 s per iteration on one CPU core). Run everything, setup to
# metrics at two budgets, with `bash tools/run_demo.sh`.
_base_ = '../eac/upernet_eac-b_8xb2-160k_ade20k-512x512.py'
crop_size = (128, 128)
embed_dims = 128
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(size=crop_size)
# the backbone's size (replaces the base's arch='b')
arch = dict(embed_dims=embed_dims, num_layers=6, num_heads=4, mlp_ratio=2.0)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch=dict(_delete_=True, **arch),
        patch_size=8,
        max_cores=32,
        out_indices=(1, 2, 3, 5),
        drop_path_rate=0.0,
        # trained from scratch; an empty init_cfg (not None) can still be
        # filled with --cfg-options model.backbone.init_cfg.type=Pretrained
        # model.backbone.init_cfg.checkpoint=CKPT
        init_cfg=dict(_delete_=True)),
    # patch 8: strides 4/8/16/32 come from scales 2/1/0.5/0.25
    neck=dict(
        in_channels=[embed_dims] * 4,
        out_channels=embed_dims,
        scales=[2, 1, 0.5, 0.25]),
    decode_head=dict(
        in_channels=[embed_dims] * 4,
        channels=96,
        dropout_ratio=0.0,
        norm_cfg=norm_cfg),
    # no auxiliary head: its full-resolution 150-class loss would cost a
    # third of each CPU step
    auxiliary_head=None,
    test_cfg=dict(_delete_=True, mode='whole'))

# the 512 pipeline with every scale divided by 4
train_pipeline = _base_.train_pipeline
train_pipeline[2].update(scale=(512, 128))  # RandomResize
train_pipeline[3].update(crop_size=crop_size)  # RandomCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=(512, 128))  # Resize
data_root = 'data/demo/ade/ADEChallengeData2016'
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 400
optim_wrapper = dict(
    optimizer=dict(lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=40),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=40,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
