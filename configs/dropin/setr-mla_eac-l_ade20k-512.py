# Drop-in (seg, MLA): mmseg's SETR-MLA ViT-L recipe (shipped in the mmseg
# wheel) with the ViT-L swapped for EAC-L (same width, 1024, and depth, 24):
# blocks 5, 11, 17, 23 feed the MLA neck as the ViT's did.
_base_ = [
    'mmseg::setr/setr_vit-l-mla_8xb1-160k_ade20k-512x512.py', './_base_/eac.py'
]
model = dict(
    backbone=dict(
        _base_.eac_b,
        _delete_=True,
        arch='l',
        out_indices=(5, 11, 17, 23),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-l_veca.pth')))
