# Drop-in (cls, cls token): mmpretrain's own ViT-B/16 ImageNet recipe at
# 384 px (shipped in the mmpretrain wheel) with the VisionTransformer
# swapped for EAC-B. EAC-B has the same width (768), so the ViT head takes
# its global token (final core 0, out_type='cls_token') unchanged; data,
# schedule and metric are mmpretrain's. The paper's protocols are
# configs/eac/linear-probe_eac-b_8xb16-12.5k_in1k-256px.py and
# configs/eac/eac-b_8xb128-ft-100e_in1k-256px.py.
_base_ = 'mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k-384px.py'
# mmeac on top of whatever the base imports (a str, a list or nothing)
__base_imports = _base_.get('custom_imports', {}).get('imports', [])
custom_imports = dict(
    imports=([__base_imports] if isinstance(__base_imports, str) else
             list(__base_imports)) + ['mmeac'],
    allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True, type='EACViT', arch='b', out_type='cls_token'))

# The EAC backbone trains with nested dropout over its cores (cores outside
# a step's budget get no gradient), which DDP must be told about.
find_unused_parameters = True
