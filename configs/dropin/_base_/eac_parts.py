# The parts the drop-in configs in configs/dropin/ put into wheel configs,
# used as, e.g., `backbone=dict(_base_.eac_b, _delete_=True, ...)`. A
# drop-in config lists this file (or eac.py, which adds mmeac's import) in
# `_base_` after the wheel config; wheel configs use none of these names
# (mmengine refuses a key that two bases share), so the config only gains
# these four entries.
#
# EAC-B initialised from the converted authors' checkpoint
# (configs/_base_/models/upernet_eac.py says how to convert it)
eac_b = dict(
    type='EACViT',
    arch='b',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth'))
# EAC-B giving the four block outputs (4, 6, 8, 12) that `mln` takes, with
# the stochastic depth of mmseg's ViT-B recipes
eac_b_4 = dict(eac_b, out_indices=(3, 5, 7, 11), drop_path_rate=0.1)
# EAC-B's stride-16 map -> 256-channel levels at the strides of `preset`
sfp = dict(type='SimpleFeaturePyramid', in_channels=768, out_channels=256)
# four EAC-B block outputs -> a pyramid at strides 4, 8, 16, 32
mln = dict(
    type='MultiLevelNeck',
    in_channels=[768] * 4,
    out_channels=768,
    scales=[4, 2, 1, 0.5])
