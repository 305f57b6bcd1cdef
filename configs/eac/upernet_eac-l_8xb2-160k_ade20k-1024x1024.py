# UperNet + EAC-L (24 blocks, D=1024) on ADE20K at 1024x1024, with layer
# decay 0.9 (see upernet_eac_sizes.py).
_base_ = [
    './upernet_eac-b_ade20k-1024.py', '../_base_/models/upernet_eac_sizes.py'
]
model = _base_.upernet_eac_l
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.9))
