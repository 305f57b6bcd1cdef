# Drop-in (seg, single map): mmseg's Segmenter ViT-B mask-transformer recipe
# (shipped in the mmseg wheel) with the ViT-B swapped for EAC-B. The head
# reads one stride-16 map, the last block's, as from the ViT. The base's
# model.pretrained (its ViT weights) is ignored because init_cfg is set.
_base_ = ['mmseg::segmenter/segmenter_vit-b_mask_8xb1-160k_ade20k-512x512.py']
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
        out_indices=-1,
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth')))
find_unused_parameters = True
