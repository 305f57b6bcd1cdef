"""mmeac.datasets: dataset-side code (data transforms).

The built-in synthetic data generators live in :mod:`mmeac.testing`.
"""
from .transforms import RandomPatchMask

__all__ = ['RandomPatchMask']
