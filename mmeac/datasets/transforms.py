"""Data transforms of mmeac (registered in MMEngine's root ``TRANSFORMS``,
so mmseg, mmdet and mmpretrain pipelines can use them after
``custom_imports=dict(imports=['mmeac'])``)."""
import zlib
from typing import Dict, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS

__all__ = ['RandomPatchMask']


@TRANSFORMS.register_module()
class RandomPatchMask(BaseTransform):
    """Blank a random fraction of the patches of the image.

    Place it after the resize / crop steps, so that the blanked cells are
    the model's patches. Blanked patches are filled with ``fill`` (e.g. the
    normalisation mean, i.e. zero input) and the labels are kept: the class
    of a blanked patch can only be recovered from its neighbours (in EAC,
    through the cores). The image becomes ``float32``.

    Required keys: ``img`` (and ``img_path`` if ``fixed``).
    Modified keys: ``img``.

    Args:
        patch_size (int): Patch size of the model (cells of the mask grid).
        ratio (float): Fraction of the patches blanked, in ``[0, 1]``.
        fill (float | Sequence[float]): Pixel value of a blanked patch, one
            value per channel in the loaded order (BGR for colour images).
        fixed (bool): Draw the mask from a seed derived from ``img_path``
            (the same mask for an image in every run and model: evaluation)
            instead of NumPy's global random state (training). Defaults to
            False.
    """

    def __init__(self,
                 patch_size: int,
                 ratio: float,
                 fill: Sequence[float],
                 fixed: bool = False) -> None:
        if not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError('RandomPatchMask: patch_size must be a positive '
                             f'int, got {patch_size!r}')
        if not 0 <= ratio <= 1:
            raise ValueError('RandomPatchMask: ratio must be in [0, 1], got '
                             f'{ratio!r}')
        self.patch_size = patch_size
        self.ratio = ratio
        self.fill = np.asarray(fill, np.float32).reshape(-1)
        self.fixed = fixed

    def transform(self, results: Dict) -> Dict:
        """Blank the patches of ``results['img']``."""
        img = results['img'].astype(np.float32)
        p = self.patch_size
        gh, gw = img.shape[0] // p, img.shape[1] // p
        if self.fixed:
            seed = zlib.crc32(str(results.get('img_path', '')).encode())
            rng = np.random.default_rng(seed)
        else:
            rng = np.random.default_rng(np.random.randint(2**31))
        blank = rng.random((gh, gw)) < self.ratio
        full = np.zeros(img.shape[:2], bool)
        full[:gh * p, :gw * p] = np.kron(blank, np.ones((p, p), bool))
        img[full] = self.fill if img.ndim == 3 else self.fill[:1].squeeze()
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(patch_size={self.patch_size}, '
                f'ratio={self.ratio}, fill={self.fill.tolist()}, '
                f'fixed={self.fixed})')
