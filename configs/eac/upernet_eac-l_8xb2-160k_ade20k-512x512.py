# UperNet + EAC-L (24 blocks, D=1024) on ADE20K at 512x512, with layer
# decay 0.9 (see upernet_eac_sizes.py).
_base_ = [
    './upernet_eac-b_8xb2-160k_ade20k-512x512.py',
    '../_base_/models/upernet_eac_sizes.py'
]
model = _base_.upernet_eac_l
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.9))
