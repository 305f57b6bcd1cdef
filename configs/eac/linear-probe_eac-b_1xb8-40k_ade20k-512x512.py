# Linear-probe segmentation, EAC paper protocol: frozen EAC-B (eval mode),
# each final patch token ++ global token (1536 channels) -> one linear layer;
# AdamW lr 0.01, weight decay 1e-4, poly, batch 8 (1 GPU x 8), 40k iters,
# 512 crops. Probe at another budget with
#   --cfg-options model.backbone.num_cores=K   (paper: 64, 32, 16, 8)
_base_ = [
    '../_base_/models/linear-probe_eac.py', '../_base_/datasets/ade20k_512.py',
    '../_base_/default_runtime_seg.py',
    '../_base_/schedules/schedule_seg-probe_40k.py'
]
crop_size = (512, 512)
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
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
