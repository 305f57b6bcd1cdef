# Drop-in: mmseg's own ViT-B UperNet recipe (shipped in the mmseg wheel),
# with only the backbone and the neck swapped for EAC-B. Everything else
# (data, schedule, heads, runtime) is mmseg's config, unchanged.
_base_ = ['mmseg::vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py']
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)
model = dict(
    pretrained=None,  # the ViT checkpoint of the base; EAC loads via init_cfg
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
