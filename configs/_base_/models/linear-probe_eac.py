# Linear probe (EAC paper protocol) on the UperNet model of upernet_eac.py:
# frozen EAC backbone in eval mode, each final patch token concatenated with
# the global token (final core 0, 2D channels), one linear (1x1 conv)
# classifier, no norm, no neck. Defaults to EAC-B. The probe runs at the
# backbone's eval budget num_cores (default 64 = all cores);
# --cfg-options model.backbone.num_cores=8 probes at C=8.
_base_ = './upernet_eac.py'
model = dict(
    backbone=dict(
        num_cores=64,
        out_indices=-1,
        output_cls_token=True,
        drop_path_rate=0.0,
        # frozen_stages >= num_layers: every weight frozen, eval mode always
        frozen_stages=12),
    neck=None,
    decode_head=dict(
        _delete_=True,
        type='LinearProbeSegHead',
        in_channels=768,
        with_global=True,
        num_classes=150,
        dropout_ratio=0.0,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None)
# the frozen backbone uses every parameter it has (no nested dropout)
find_unused_parameters = False
