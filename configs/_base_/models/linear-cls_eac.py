# Image classifier on EAC-B: the global token (final core 0, [B, 768]) into a
# linear head. Set up as a linear probe (backbone frozen in eval mode, the
# paper's protocol); the fine-tuning config unfreezes it. Any config built on
# it imports mmeac.
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='EACViT',
        arch='b',
        patch_size=16,
        out_indices=-1,
        out_type='cls_token',
        final_norm=True,
        frozen_stages=12,  # = num_layers: everything frozen, eval mode
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.01)))
