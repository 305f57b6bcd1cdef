"""Necks of mmeac."""
from .simple_feature_pyramid import LayerNorm2d, SimpleFeaturePyramid

__all__ = ['SimpleFeaturePyramid', 'LayerNorm2d']
