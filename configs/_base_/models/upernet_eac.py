# UperNet on an EAC ViT: four block outputs -> MultiLevelNeck (4x/2x/1x/0.5x
# pyramid) -> UPerHead (+ FCN auxiliary head on the third level).
# Defaults to EAC-B (D=768, 12 blocks) initialised from the converted
# authors' checkpoint, 512 x 512 crops and sliding-window testing; S/L
# configs override arch, out_indices, the checkpoint and the channel lists,
# 1024 px configs the crop size. Any config built on it imports mmeac.
#
# Pretrained weights: convert the authors' EAC-B (VECA) checkpoint first,
#   python tools/model_converters/veca2mmeac.py VECA_B.pth \
#       checkpoints/eac-b_veca.pth
# (or point init_cfg.checkpoint at the authors' file, which loads as well).
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512),  # training batches: the 512 x 512 crops
    # at test time pad to whole patches (EAC drops partial patches); the
    # padding is cut off again before the metric
    test_cfg=dict(size_divisor=16))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='EACViT',
        arch='b',
        patch_size=16,
        max_cores=64,
        # nested dropout during fine-tuning (the backbone's default budgets
        # 8..64 with weights 1,1,2,2,3,3,4,4) keeps the model elastic; the
        # eval budget is num_cores (default max_cores), override it with
        # --cfg-options model.backbone.num_cores=K
        out_indices=(3, 5, 7, 11),
        output_cls_token=False,
        final_norm=True,
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth')),
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[768, 768, 768, 768],
        out_channels=768,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(
        type='UPerHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=768,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    # sliding 512 windows with 1/3 overlap: each window has the geometry of
    # a training crop (RoPE coordinates span one crop)
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
# cores outside the drawn budget get no gradient in a step (nested dropout)
find_unused_parameters = True
