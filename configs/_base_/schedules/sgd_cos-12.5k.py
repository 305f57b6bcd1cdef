# The paper's classification linear-probe schedule: SGD, momentum 0.9,
# lr 0.05, no weight decay, cosine decay to 0 over 12.5k steps at batch 128.
max_iters = 12500

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0.0))

param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
        end=max_iters)
]

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2500)
val_cfg = dict()
test_cfg = dict()

# base_batch_size = 8 GPUs x 16 images; USER SHOULD NOT CHANGE IT.
auto_scale_lr = dict(base_batch_size=128)
