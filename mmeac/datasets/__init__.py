"""mmeac.datasets: built-in synthetic data in the ADE20K, COCO and ImageNet
layouts (see :mod:`mmeac.datasets.synthetic`)."""
from .checks import CheckedCompose
from .synthetic import (ADE_BACKGROUND_ID, ADE_CLASS_IDS, COCO_CLASSES,
                        DATASET_DIRS, IMAGENET_CLASSES, IMAGENET_LABELS,
                        SHAPE_CLASSES, BuiltinDataExistsError, ShapeClass,
                        make_ade20k, make_all, make_coco, make_imagenet,
                        parse_size)

__all__ = [
    'ADE_BACKGROUND_ID', 'ADE_CLASS_IDS', 'COCO_CLASSES', 'DATASET_DIRS',
    'IMAGENET_CLASSES', 'IMAGENET_LABELS', 'SHAPE_CLASSES',
    'BuiltinDataExistsError', 'CheckedCompose', 'ShapeClass', 'make_ade20k',
    'make_all', 'make_coco', 'make_imagenet', 'parse_size'
]
