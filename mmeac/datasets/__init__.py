"""mmeac.datasets: dataset-side code: data transforms and the
multi-resolution batch sampler / dataset wrapper.

The built-in synthetic data generators live in :mod:`mmeac.testing`.
"""
from .multires import MultiResolutionBatchSampler, MultiResolutionDataset
from .transforms import RandomPatchMask

__all__ = [
    'MultiResolutionBatchSampler', 'MultiResolutionDataset', 'RandomPatchMask'
]
