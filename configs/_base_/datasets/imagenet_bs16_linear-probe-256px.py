# ImageNet-1k at 256 px for a linear probe: mmpretrain's pillow / bicubic
# ImageNet pipeline scaled from 224 to 256 px (random resized crop + flip
# for training, short side 292 + centre crop 256 for testing), batch 16,
# an endless shuffled stream for the iteration-based schedule. Images of any
# size and aspect ratio go through (they are cropped to 256 x 256).
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs32_pil_bicubic.py'
train_pipeline = _base_.train_pipeline
train_pipeline[1].update(scale=256)  # RandomResizedCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1].update(scale=292)  # ResizeEdge: 256 / 0.875
test_pipeline[2].update(crop_size=256)  # CenterCrop
train_dataloader = dict(
    batch_size=16,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    persistent_workers=True,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
