# Drop-in (cls, linear probe): mmpretrain's MAE ViT-B linear-probe recipe
# (shipped in the mmpretrain wheel: frozen backbone, BatchNorm neck, linear
# head, LARS) with the ViT-B swapped for a frozen EAC-B. The probe reads the
# global token (final core 0); frozen_stages=12 fixes every EAC weight (and
# keeps the backbone in eval mode, at its full core budget).
_base_ = [
    'mmpretrain::mae/benchmarks/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py',
    './_base_/eac_parts.py'
]
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _base_.eac_b, _delete_=True, frozen_stages=12, out_type='cls_token'))
