# UperNet + EAC-B on ADE20K at 512 x 512 (8 GPUs x 2 images, 160k iters):
# the model of upernet_eac.py on mmseg's own ADE20K data and runtime.
# Elastic evaluation at budget K: tools/test.py CONFIG CKPT
#   --cfg-options model.backbone.num_cores=K   (K in 8, 16, ..., 64)
_base_ = [
    '../_base_/models/upernet_eac.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/adamw-ld_poly-160k.py'
]
train_dataloader = dict(batch_size=2)
