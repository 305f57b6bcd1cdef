# Drop-in (cls, linear probe): mmpretrain's MAE ViT-B linear-probe recipe
# (shipped in the mmpretrain wheel: frozen backbone, BatchNorm neck, linear
# head, LARS) with the ViT-B swapped for a frozen EAC-B. The probe reads the
# global token (final core 0); frozen_stages=12 fixes every EAC weight (and
# keeps the backbone in eval mode, at its full core budget).
_base_ = ('mmpretrain::mae/benchmarks/'
          'vit-base-p16_8xb2048-linear-coslr-90e_in1k.py')
# mmeac on top of whatever the base imports (a str, a list or nothing)
__base_imports = _base_.get('custom_imports', {}).get('imports', [])
custom_imports = dict(
    imports=([__base_imports] if isinstance(__base_imports, str) else
             list(__base_imports)) + ['mmeac'],
    allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='EACViT',
        arch='b',
        frozen_stages=12,
        out_type='cls_token',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth')))
