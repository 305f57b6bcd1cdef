# Drop-in (cls, average pooling): mmpretrain's MAE ViT-B fine-tuning recipe
# (shipped in the mmpretrain wheel: AdamW + layer decay 0.65, Mixup/CutMix)
# with the ViT-B swapped for EAC-B. As the ViT there, the backbone gives the
# mean of its patch tokens (out_type='avg_featmap') to a linear head. Layer
# decay follows EACViT.get_layer_depth; the core bank, core coordinates and
# coordinate-update scales get no weight decay (mmeac does that for any
# optimizer constructor).
_base_ = [
    'mmpretrain::mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py',
    './_base_/eac.py'
]
model = dict(
    backbone=dict(
        _base_.eac_b,
        _delete_=True,
        drop_path_rate=0.1,
        out_type='avg_featmap'))
