# Drop-in (seg, single map): mmseg's Segmenter ViT-B mask-transformer recipe
# (shipped in the mmseg wheel) with the ViT-B swapped for EAC-B. The head
# reads one stride-16 map, the last block's, as from the ViT. The base's
# model.pretrained (its ViT weights) is ignored because init_cfg is set.
_base_ = [
    'mmseg::segmenter/segmenter_vit-b_mask_8xb1-160k_ade20k-512x512.py',
    './_base_/eac.py'
]
model = dict(
    backbone=dict(
        _base_.eac_b, _delete_=True, out_indices=-1, drop_path_rate=0.1))
