# Mask R-CNN, EAC-B backbone + simple feature pyramid (sfp), LSJ 1024, COCO.
#
# 8 GPUs x 8 images, AdamW + layer-wise lr decay 0.7, ~100 epochs
# (184,375 iterations). Mixed precision: `tools/train.py CONFIG --amp`
# (or `bash tools/dist_train.sh CONFIG 8 --amp`). The backbone trains with
# nested dropout over the core axis (budgets 8..64), so one detector serves
# every budget at test time: `tools/test.py CONFIG CKPT --cfg-options
# model.backbone.num_cores=16`.
#
# Pretrained backbone: convert the authors' checkpoint first,
#   python tools/model_converters/veca2mmeac.py veca_b.pt \
#       checkpoints/eac-b_veca.pth
_base_ = [
    '../_base_/models/mask-rcnn_eac_sfp.py',
    '../_base_/datasets/coco-instance_lsj-1024.py',
    '../_base_/schedules/adamw-ld_step-184k.py',
    'mmdet::_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(
        # Test images (resized into 1024 x 1024) are padded to the 1024 x 1024
        # canvas here; training batches are padded to it by
        # BatchFixedSizePad (and the pipeline's Pad).
        pad_size_divisor=1024,
        batch_augments=[
            dict(type='BatchFixedSizePad', size=(1024, 1024), pad_mask=True)
        ]))
# Iteration-based logging and checkpoints (the runtime defaults are by epoch).
default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    checkpoint=dict(
        type='SafeCheckpointHook',
        by_epoch=False,
        interval=10000,
        max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
