"""mmeac.datasets: dataset-side code: data transforms, the pipeline checks
of the tools and the multi-resolution batch sampler / dataset wrapper.

The built-in synthetic data generators live in :mod:`mmeac.testing`.
"""
from .checks import CheckedCompose
from .multires import MultiResolutionBatchSampler, MultiResolutionDataset
from .transforms import RandomPatchMask

__all__ = [
    'CheckedCompose', 'MultiResolutionBatchSampler', 'MultiResolutionDataset',
    'RandomPatchMask'
]
