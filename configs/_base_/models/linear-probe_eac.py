# Linear probe (EAC paper protocol): frozen EAC backbone in eval mode, each
# final patch token concatenated with the global token (final core 0, 2D
# channels), one linear (1x1 conv) classifier, no norm. Defaults to EAC-B.
# The probe runs at the backbone's eval budget num_cores (default 64 = all
# cores); --cfg-options model.backbone.num_cores=8 probes at C=8.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
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
        num_cores=64,
        out_indices=-1,
        output_cls_token=True,
        final_norm=True,
        # frozen_stages >= num_layers: every weight frozen, eval mode always
        frozen_stages=12),
    decode_head=dict(
        type='LinearProbeSegHead',
        in_channels=768,
        with_global=True,
        num_classes=150,
        dropout_ratio=0.0,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
