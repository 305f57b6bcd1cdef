# Drop-in (seg, ViT-style multi-level): mmseg's own ViT-B UperNet recipe
# (shipped in the mmseg wheel) with only the backbone and the neck swapped
# for EAC-B. Four blocks feed MultiLevelNeck (strides 4, 8, 16, 32). The
# base's model.pretrained (its ViT weights) is ignored because init_cfg is
# set. Everything else (data, schedule, heads, runtime) is mmseg's.
_base_ = [
    'mmseg::vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py',
    './_base_/eac.py'
]
model = dict(
    backbone=dict(_base_.eac_b_4, _delete_=True),
    neck=dict(_base_.mln, _delete_=True))
