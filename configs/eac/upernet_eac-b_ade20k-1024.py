# UperNet + EAC-B on ADE20K at 1024 x 1024 (8 GPUs x 2 images, 160k iters):
# the 512 x 512 config with every scale of the data pipeline doubled
# (short side 1024 at ratio 1, resize ratio 0.5-2.0, 1024 crops) and
# 1024 x 1024 sliding windows (stride 683) at test time.
#
# Pretrained weights: checkpoints/eac-b_veca.pth, see upernet_eac.py.
# Elastic evaluation at budget K: tools/test.py CONFIG CKPT
#   --cfg-options model.backbone.num_cores=K   (K in 8, 16, ..., 64)
# Mixed precision: upernet_eac-b_8xb2-amp-160k_ade20k-1024x1024.py or --amp.
_base_ = './upernet_eac-b_8xb2-160k_ade20k-512x512.py'
crop_size = (1024, 1024)
train_pipeline = _base_.train_pipeline
train_pipeline[2].update(scale=(4096, 1024))  # RandomResize
train_pipeline[3].update(crop_size=crop_size)  # RandomCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=(4096, 1024))  # Resize
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    test_cfg=dict(crop_size=crop_size, stride=(683, 683)))
