# Drop-in (cls, cls token): mmpretrain's own ViT-B/16 ImageNet recipe at
# 384 px (shipped in the mmpretrain wheel) with the VisionTransformer
# swapped for EAC-B. EAC-B has the same width (768), so the ViT head takes
# its global token (final core 0, out_type='cls_token') unchanged; data,
# schedule and metric are mmpretrain's. The paper's protocols are
# configs/eac/linear-probe_eac-b_8xb16-12.5k_in1k-256px.py and
# configs/eac/eac-b_8xb128-ft-100e_in1k-256px.py.
_base_ = [
    'mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k-384px.py',
    './_base_/eac.py'
]
# trained from scratch, as the ViT there
model = dict(
    backbone=dict(
        _delete_=True, type='EACViT', arch='b', out_type='cls_token'))
