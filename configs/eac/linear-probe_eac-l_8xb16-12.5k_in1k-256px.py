# ImageNet-1k linear probe of a frozen EAC-L (24 layers, 1024 dims); protocol
# as EAC-B.
_base_ = './linear-probe_eac-b_8xb16-12.5k_in1k-256px.py'

model = dict(
    backbone=dict(
        arch='l',
        frozen_stages=24,
        init_cfg=dict(checkpoint='checkpoints/eac-l_veca.pth')),
    head=dict(in_channels=1024))
