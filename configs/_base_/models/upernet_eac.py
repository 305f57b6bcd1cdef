# UperNet on an EAC ViT: four block outputs -> MultiLevelNeck (4x/2x/1x/0.5x
# pyramid) -> UPerHead (+ FCN auxiliary head on the third level): mmseg's
# ViT-B UperNet model with the backbone swapped, ADE20K's 150 classes and
# sliding-window testing.
# Defaults to EAC-B (D=768, 12 blocks) initialised from the converted
# authors' checkpoint, 512 x 512 crops and sliding-window testing; S/L
# configs override arch, out_indices, the checkpoint and the channel lists,
# 1024 px configs the crop size. Any config built on it imports mmeac.
#
# Pretrained weights: convert the authors' EAC-B (VECA) checkpoint first,
#   python tools/model_converters/veca2mmeac.py VECA_B.pth \
#       checkpoints/eac-b_veca.pth
# (or point init_cfg.checkpoint at the authors' file, which loads as well).
_base_ = 'mmseg::_base_/models/upernet_vit-b16_ln_mln.py'
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)
data_preprocessor = dict(
    size=(512, 512),  # training batches: the 512 x 512 crops
    # at test time pad to whole patches (EAC drops partial patches); the
    # padding is cut off again before the metric
    test_cfg=dict(size_divisor=16))
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
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
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(in_index=2, num_classes=150),
    # sliding 512 windows with 1/3 overlap: each window has the geometry of
    # a training crop (RoPE coordinates span one crop)
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
# cores outside the drawn budget get no gradient (nested dropout)
find_unused_parameters = True
