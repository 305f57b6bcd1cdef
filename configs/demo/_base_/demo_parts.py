# What the 4-iteration demo configs (the test-sized versions of the
# recipes) share, as helper keys: a demo lists this file in `_base_` after
# the config it shrinks (which uses none of these names) and uses the
# parts, e.g. `train_dataloader = dict(_base_.in_process, batch_size=4)`.
#
# the tiny EAC: 2 blocks of 64 dims and 16 cores (budgets 8 and 16), from
# scratch (replaces the recipe's arch='b' and its pretrained weights)
eac_tiny = dict(
    arch=dict(
        _delete_=True, embed_dims=64, num_layers=2, num_heads=4,
        mlp_ratio=2.0),
    max_cores=16,
    init_cfg=None)
# a handful of images, read in the main process: worker processes would
# take longer to start than the reading
in_process = dict(num_workers=0, persistent_workers=False)
