# 100 epochs at batch 1024 (8 GPUs x 128) with AdamW (weight decay 0.05):
# 5 epochs of linear warm-up, then cosine decay to 1e-6, both stepped every
# iteration. The distillation and ImageNet fine-tuning recipes set their
# own learning rate, warm-up start factor and parameter-wise settings.
max_epochs = 100
warmup_epochs = 5
optim_wrapper = dict(
    type='OptimWrapper',  # `tools/train.py --amp` switches to AmpOptimWrapper
    optimizer=dict(
        type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=1e-6,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=1024)
# Cores outside a step's budget get no gradient (nested dropout): tell DDP.
find_unused_parameters = True
