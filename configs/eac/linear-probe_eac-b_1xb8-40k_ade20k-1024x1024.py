# The linear probe of linear-probe_eac-b_1xb8-40k_ade20k-512x512.py at
# 1024 x 1024 crops: the ADE20K data at 1024 (ade20k-1024.py) and 1024 x 1024
# sliding windows (stride 683), as upernet_eac-b_ade20k-1024.py scales the
# 512 UperNet.
_base_ = [
    '../_base_/models/linear-probe_eac.py',
    '../_base_/datasets/ade20k-1024.py', 'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly-40k.py'
]
train_dataloader = dict(batch_size=8)
data_preprocessor = dict(size=_base_.crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    test_cfg=dict(crop_size=_base_.crop_size, stride=(683, 683)))
