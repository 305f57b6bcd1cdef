# The linear probe of linear-probe_eac-b_1xb8-40k_ade20k-512x512.py at
# 1024 x 1024 crops (ADE pipeline scaled to 1024, slide 1024 / 683).
_base_ = [
    '../_base_/models/linear-probe_eac.py',
    '../_base_/datasets/ade20k_1024.py',
    '../_base_/default_runtime_seg.py',
    '../_base_/schedules/schedule_seg-probe_40k.py'
]
crop_size = (1024, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch='b',
        num_cores=64,
        frozen_stages=12,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth')),
    decode_head=dict(in_channels=768),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(683, 683)))
train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
