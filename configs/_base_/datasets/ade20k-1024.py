# mmseg's ADE20K (ade20k.py, 512 x 512 crops) at 1024 x 1024 crops: every
# scale of the pipeline doubled (short side 1024 at ratio 1, resize ratio
# 0.5-2.0, 1024 crops; testing at short side 1024). A config built on it
# sets the model's sizes to `crop_size` (the data preprocessor's padding and
# the sliding windows).
_base_ = 'mmseg::_base_/datasets/ade20k.py'
crop_size = (1024, 1024)
train_pipeline = _base_.train_pipeline
train_pipeline[2].update(scale=(4096, 1024))  # RandomResize
train_pipeline[3].update(crop_size=crop_size)  # RandomCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=(4096, 1024))  # Resize
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
