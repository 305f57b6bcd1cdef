# UperNet + EAC-B on ADE20K at 1024 x 1024 (8 GPUs x 2 images, 160k iters):
# the 512 x 512 config (upernet_eac-b_8xb2-160k_ade20k-512x512.py) on the
# ADE20K data at 1024 (every scale of the pipeline doubled, see
# ade20k-1024.py), with 1024 x 1024 sliding windows (stride 683) at test
# time.
#
# Pretrained weights: checkpoints/eac-b_veca.pth, see upernet_eac.py.
# Elastic evaluation at budget K: tools/test.py CONFIG CKPT
#   --cfg-options model.backbone.num_cores=K   (K in 8, 16, ..., 64)
# Mixed precision: upernet_eac-b_8xb2-amp-160k_ade20k-1024x1024.py or --amp.
_base_ = [
    '../_base_/models/upernet_eac.py', '../_base_/datasets/ade20k-1024.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/adamw-ld_poly-160k.py'
]
train_dataloader = dict(batch_size=2)
crop_size = (1024, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    test_cfg=dict(crop_size=crop_size, stride=(683, 683)))
