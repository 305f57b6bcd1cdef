# The linear probe of linear-probe_eac-b_1xb8-40k_ade20k-512x512.py at
# 1024 x 1024 crops: the ADE pipeline scaled to 1024 and 1024 x 1024 sliding
# windows (stride 683), as upernet_eac-b_ade20k-1024.py scales its 512 base.
_base_ = './linear-probe_eac-b_1xb8-40k_ade20k-512x512.py'
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
