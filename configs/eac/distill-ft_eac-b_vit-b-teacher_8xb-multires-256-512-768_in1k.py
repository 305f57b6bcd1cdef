# Multi-resolution stage of EAC-B distillation (the paper fine-tunes at
# several resolutions after the 256 px stage): each iteration trains at one
# resolution, cycling 256 -> 512 -> 768 px, with a batch size per resolution
# (per GPU: 32 / 8 / 4; 8 GPUs). mmeac's MultiResolutionBatchSampler picks the
# size of each batch (the same on every GPU) and MultiResolutionDataset runs
# the pipeline built for it. The teacher sees 224 / 448 / 672 px
# (teacher_patch_size=14), so its patch grid equals the student's.
#
# Starts from the 256 px stage's checkpoint (student and projection):
#   bash tools/dist_train.sh CONFIG 8 --cfg-options load_from=CHECKPOINT
# (by default load_from is the 256 px config's last epoch in its work dir).
# Schedule (this project's choice, the paper gives none): 30k iterations,
# AdamW lr 1e-4, 1k warm-up iterations, cosine to 1e-6.
_base_ = './distill_eac-b_vit-b-teacher_8xb128-in1k-256px.py'

resolutions = [256, 512, 768]
batch_sizes = [32, 8, 4]
load_from = 'work_dirs/distill_eac-b_vit-b-teacher_8xb128-in1k-256px/' \
    'epoch_100.pth'
model = dict(input_size=resolutions)

# the 256 px stage's pipeline; MultiResolutionDataset sets the crop size
multires_pipeline = _base_.train_pipeline
train_dataloader = dict(
    batch_size=batch_sizes[0],
    num_workers=10,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(
        type='MultiResolutionBatchSampler',
        resolutions=resolutions,
        batch_sizes=batch_sizes),
    dataset=dict(
        _delete_=True,
        type='MultiResolutionDataset',
        resolutions=resolutions,
        pipeline=multires_pipeline,
        dataset=dict(
            type='ImageNet',
            data_root='data/imagenet/',
            split='train',
            pipeline=[])))

max_iters = 30000
warmup_iters = 1000
optim_wrapper = dict(optimizer=dict(lr=1e-4))
# the 256 px stage's warm-up and cosine decay, per iteration
param_scheduler = _base_.param_scheduler
param_scheduler[0].update(
    by_epoch=False, end=warmup_iters, convert_to_iter_based=False)
param_scheduler[1].update(
    T_max=max_iters - warmup_iters, begin=warmup_iters, end=max_iters)
param_scheduler[1].update(by_epoch=False, convert_to_iter_based=False)
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
