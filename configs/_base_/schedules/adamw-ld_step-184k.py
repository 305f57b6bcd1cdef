# ViTDet-style schedule for Mask R-CNN on COCO with LSJ: AdamW (lr 1e-4,
# weight decay 0.1) with layer-wise lr decay 0.7 over the backbone depth
# (norms, biases and the EAC core bank get no weight decay), 250 iterations
# of linear warm-up, x0.1 at 88.9 % and 96.3 % of 184,375 iterations
# (~100 epochs of COCO train2017 at batch 64).
max_iters = 184375

optim_wrapper = dict(
    type='OptimWrapper',  # `tools/train.py --amp` switches to AmpOptimWrapper
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.7))

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[163889, 177546],
        gamma=0.1)
]

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Nested dropout over the core axis: cores outside a step's budget get no
# gradient, which DDP must be told about.
find_unused_parameters = True

# base_batch_size = 8 GPUs x 8 images; USER SHOULD NOT CHANGE IT.
auto_scale_lr = dict(enable=False, base_batch_size=64)
