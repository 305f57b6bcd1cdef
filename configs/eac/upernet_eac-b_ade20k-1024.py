# UperNet + EAC-B on ADE20K at 1024 x 1024 (8 GPUs x 2 images, 160k iters).
# OpenMMLab-style alias: upernet_eac-b_8xb2-160k_ade20k-1024x1024.py.
#
# Pretrained weights: convert the authors' EAC-B (VECA) checkpoint first,
#   python tools/model_converters/veca2mmeac.py VECA_B.pth \
#       checkpoints/eac-b_veca.pth
# (or point init_cfg.checkpoint at the authors' file, which loads as well).
# Elastic evaluation at budget K: tools/test.py CONFIG CKPT
#   --cfg-options model.backbone.num_cores=K   (K in 8, 16, ..., 64)
# Mixed precision: upernet_eac-b_8xb2-amp-160k_ade20k-1024x1024.py or --amp.
_base_ = [
    '../_base_/models/upernet_eac.py', '../_base_/datasets/ade20k_1024.py',
    '../_base_/default_runtime_seg.py',
    '../_base_/schedules/schedule_seg-adamw-ld_160k.py'
]
crop_size = (1024, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch='b',
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/eac-b_veca.pth')),
    # sliding 1024 windows with 1/3 overlap: each window has the geometry
    # of a training crop (RoPE coordinates span one crop)
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(683, 683)))
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
