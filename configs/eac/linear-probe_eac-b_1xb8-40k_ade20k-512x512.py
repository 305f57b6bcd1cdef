# Linear-probe segmentation, EAC paper protocol: frozen EAC-B (eval mode),
# each final patch token ++ global token (1536 channels) -> one linear layer;
# AdamW lr 0.01, weight decay 1e-4, poly, batch 8 (1 GPU x 8), 40k iters,
# 512 crops, mmseg's ADE20K data and runtime. Probe at another budget with
#   --cfg-options model.backbone.num_cores=K   (paper: 64, 32, 16, 8)
_base_ = [
    '../_base_/models/linear-probe_eac.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/adamw_poly-40k.py'
]
train_dataloader = dict(batch_size=8)
