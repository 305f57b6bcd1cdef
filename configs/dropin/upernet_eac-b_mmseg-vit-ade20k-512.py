# Drop-in (seg, ViT-style multi-level): mmseg's own ViT-B UperNet recipe
# (shipped in the mmseg wheel) with only the backbone and the neck swapped
# for EAC-B. Four blocks feed MultiLevelNeck (strides 4, 8, 16, 32). The
# base's model.pretrained (its ViT weights) is ignored because init_cfg is
# set. Everything else (data, schedule, heads, runtime) is mmseg's.
_base_ = ['mmseg::vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py']
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
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth')),
    neck=dict(
        _delete_=True,
        type='MultiLevelNeck',
        in_channels=[768, 768, 768, 768],
        out_channels=768,
        scales=[4, 2, 1, 0.5]))
# nested dropout: cores outside a step's budget get no gradient
find_unused_parameters = True
