"""Inference API: mmeac models on images, through the upstream inferencers.

mmseg, mmdet and mmpretrain are imported only when an inferencer is built.
"""
from .inference import (IMAGE_EXTENSIONS, TASKS, EACInferencer,
                        check_image_file, expand_inputs, init_model,
                        list_images, load_config, set_num_cores, task_of)

__all__ = [
    'EACInferencer', 'init_model', 'load_config', 'task_of', 'set_num_cores',
    'list_images', 'expand_inputs', 'check_image_file', 'IMAGE_EXTENSIONS',
    'TASKS'
]
