# Test-sized linear probe, used by tests/test_seg_e2e.py: the backbone of
# upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py (its data, 4 iterations
# and runtime too), frozen and probed at 8 cores with the paper's protocol:
# patch ++ global token -> one linear layer, AdamW lr 0.01, weight decay
# 1e-4, poly decay (as linear-probe_eac-b_1xb8-40k_ade20k-512x512.py).
_base_ = './upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py'
model = dict(
    # random weights unless --cfg-options fills init_cfg (see the base)
    backbone=dict(
        num_cores=8, out_indices=-1, output_cls_token=True, frozen_stages=4),
    neck=None,
    decode_head=dict(
        _delete_=True,
        type='LinearProbeSegHead',
        in_channels=32,
        num_classes=150),
    auxiliary_head=None)
# the frozen backbone uses every parameter it has (no nested dropout)
find_unused_parameters = False
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.01, weight_decay=1e-4))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=0,
        end=_base_.max_iters,
        by_epoch=False)
]
# data under mmseg's default root (make_builtin_data.py ade20k --out data)
data_root = 'data/ade/ADEChallengeData2016'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
