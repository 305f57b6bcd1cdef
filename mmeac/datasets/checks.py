"""A pipeline wrapper that turns bad samples into one-line errors.

``tools/train.py`` and ``tools/test.py`` wrap each dataset's ``pipeline``
in :class:`CheckedCompose`: the transforms run as before, and

* a segmentation map whose size differs from its image raises a
  :class:`~mmeac.errors.DataError` naming both files (instead of an
  ``IndexError`` in the metric or a wrong crop);
* an image that the pipeline shrinks below one backbone patch (an elongated
  image that a keep-ratio resize brings to a few pixels, or to 0 px, where
  OpenCV fails) raises one naming the image, its size and the transform;
* any other transform failure is re-raised as a ``DataError`` naming the
  image and the transform, with the original message.
"""
from typing import List, Optional, Sequence

from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS

from ..errors import DataError, InputError


def _size(results: dict) -> Optional[tuple]:
    img = results.get('img', None)
    shape = getattr(img, 'shape', None)
    if shape is None or len(shape) < 2:
        return None
    return int(shape[1]), int(shape[0])  # width, height


def _px(wh: Optional[tuple]) -> str:
    return 'unknown size' if wh is None else f'{wh[0]}x{wh[1]} px'


@TRANSFORMS.register_module()
class CheckedCompose(BaseTransform):
    """Run ``transforms`` in turn; report a bad sample as a ``DataError``.

    Args:
        transforms (Sequence[dict | callable]): The wrapped pipeline.
        min_size (int): Smallest image side allowed before packing (the
            backbone's patch size). Defaults to 1.
    """

    def __init__(self, transforms: Sequence, min_size: int = 1) -> None:
        self.transforms: List = [
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in transforms
        ]
        self.min_size = max(1, int(min_size))

    def _fail(self, results: dict, msg: str) -> None:
        raise DataError(f"image '{results.get('img_path', '?')}': {msg}")

    def transform(self, results: dict) -> Optional[dict]:
        original = None
        for t in self.transforms:
            name = type(t).__name__
            if name.startswith('Pack'):
                size = _size(results)
                if size is not None and min(size) < self.min_size:
                    self._fail(
                        results, f'{_px(original)} becomes {_px(size)} in '
                        'the pipeline, smaller than one '
                        f'{self.min_size}-px patch (too elongated or too '
                        'small for the resize)')
            had_seg = 'gt_seg_map' in results
            try:
                out = t(results)
            except InputError:
                raise
            except Exception as err:
                size = _size(results)
                hint = ''
                if size is not None and 'Resize' in name and min(size) > 0:
                    ratio = max(size) / min(size)
                    hint = (f' (aspect ratio {ratio:.0f}:1: a side would '
                            f'shrink below one {self.min_size}-px patch)')
                if hint:
                    self._fail(
                        results, f'{name} cannot resize it '
                        f'({_px(size)}){hint}')
                first = (str(err).strip().splitlines() or [''])[-1]
                self._fail(
                    results, f'{name} failed on it ({_px(size)}): '
                    f'{type(err).__name__}: {first.strip()}')
            if out is None:
                return None
            results = out
            if original is None:
                original = _size(results)
            if not had_seg and 'gt_seg_map' in results:
                # a freshly loaded map has its file's size; compare it with
                # the image file's (test pipelines resize before loading it)
                seg = results['gt_seg_map']
                seg_wh = (int(seg.shape[1]), int(seg.shape[0]))
                ori = results.get('ori_shape', None)
                img_wh = (int(ori[1]), int(ori[0])) if ori is not None \
                    else original
                if img_wh is not None and seg_wh != img_wh:
                    raise DataError(
                        f"annotation '{results.get('seg_map_path', '?')}' is "
                        f'{_px(seg_wh)} but its image '
                        f"'{results.get('img_path', '?')}' is {_px(img_wh)}")
        return results

    def __repr__(self) -> str:
        inner = ', '.join(type(t).__name__ for t in self.transforms)
        return f'{type(self).__name__}([{inner}], min_size={self.min_size})'
