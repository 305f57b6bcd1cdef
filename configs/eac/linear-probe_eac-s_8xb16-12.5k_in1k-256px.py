# ImageNet-1k linear probe of a frozen EAC-S (384 dims); protocol as EAC-B.
_base_ = './linear-probe_eac-b_8xb16-12.5k_in1k-256px.py'

model = dict(
    backbone=dict(
        arch='s', init_cfg=dict(checkpoint='checkpoints/eac-s_veca.pth')),
    head=dict(in_channels=384))
