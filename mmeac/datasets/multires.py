"""Multi-resolution training: one resolution per iteration, cycled.

:class:`MultiResolutionBatchSampler` yields the batches of iteration ``i`` at
``resolutions[i % len(resolutions)]`` with that resolution's batch size, as
``(index, resolution)`` pairs; :class:`MultiResolutionDataset` wraps any
dataset and runs the pipeline built for that resolution. Every rank cycles
in the same order, so all processes of a step train at the same size::

    train_dataloader = dict(
        batch_size=32,  # unused: batch_sizes below
        batch_sampler=dict(
            type='MultiResolutionBatchSampler',
            resolutions=[256, 512, 768], batch_sizes=[32, 8, 4]),
        dataset=dict(
            type='MultiResolutionDataset',
            resolutions=[256, 512, 768],
            dataset=dict(type='ImageNet', data_root=..., pipeline=[]),
            pipeline=[..., dict(type='RandomResizedCrop', scale=256), ...]))
"""
import copy
from typing import Iterator, List, Sequence, Tuple

from mmengine.dataset import Compose
from mmengine.registry import DATA_SAMPLERS, DATASETS, TRANSFORMS
from torch.utils.data import Dataset, Sampler

__all__ = ['MultiResolutionBatchSampler', 'MultiResolutionDataset']


def _check_resolutions(resolutions, who: str) -> List[int]:
    if (not isinstance(resolutions, (list, tuple)) or not resolutions or any(
            isinstance(r, bool) or not isinstance(r, int) or r < 1
            for r in resolutions)):
        raise ValueError(f'{who}: resolutions must be a non-empty list of '
                         f'positive ints, got {resolutions!r}')
    return list(resolutions)


@DATA_SAMPLERS.register_module()
class MultiResolutionBatchSampler(Sampler):
    """Batches cycling over resolutions, one resolution per iteration.

    Args:
        sampler (Sampler): The index sampler (``DefaultSampler``,
            ``InfiniteSampler``, ...).
        batch_size (int): Batch size used for every resolution when
            ``batch_sizes`` is None (MMEngine passes the dataloader's).
        resolutions (Sequence[int]): Image sizes, visited in this order.
        batch_sizes (Sequence[int], optional): Batch size per resolution.
        drop_last (bool): Drop a last incomplete batch. Defaults to True.
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 resolutions: Sequence[int],
                 batch_sizes: Sequence[int] = None,
                 drop_last: bool = True) -> None:
        self.sampler = sampler
        self.resolutions = _check_resolutions(resolutions, type(self).__name__)
        if batch_sizes is None:
            batch_sizes = [batch_size] * len(self.resolutions)
        if len(batch_sizes) != len(self.resolutions) or any(
                isinstance(b, bool) or not isinstance(b, int) or b < 1
                for b in batch_sizes):
            raise ValueError(
                f'{type(self).__name__}: batch_sizes must be one positive '
                f'int per resolution {self.resolutions}, got {batch_sizes!r}')
        self.batch_sizes = list(batch_sizes)
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        step = 0
        batch: List[Tuple[int, int]] = []
        for index in self.sampler:
            k = step % len(self.resolutions)
            batch.append((index, self.resolutions[k]))
            if len(batch) == self.batch_sizes[k]:
                yield batch
                batch = []
                step += 1
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        total = len(self.sampler)
        steps = 0
        while True:
            need = self.batch_sizes[steps % len(self.resolutions)]
            if total >= need:
                total -= need
                steps += 1
            else:
                return steps + (1 if total and not self.drop_last else 0)

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to the index sampler (shuffling seed)."""
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)


@DATASETS.register_module()
class MultiResolutionDataset(Dataset):
    """A dataset whose samples are made at a size chosen per batch.

    ``dataset[(index, res)]`` loads sample ``index`` of the wrapped dataset
    (without its own pipeline) and runs ``pipeline`` with every ``scale``,
    ``crop_size`` and ``size`` argument (the keys in ``size_keys``) set to
    ``res``. A plain ``dataset[index]`` uses the first resolution.

    Args:
        dataset (dict | Dataset): The wrapped dataset; give it
            ``pipeline=[]``.
        resolutions (Sequence[int]): The sizes the batch sampler asks for.
        pipeline (list[dict]): The pipeline template.
        size_keys (Sequence[str]): Transform arguments replaced by the size.
    """

    def __init__(
            self,
            dataset,
            resolutions: Sequence[int],
            pipeline: Sequence[dict],
            size_keys: Sequence[str] = ('scale', 'crop_size', 'size'),
    ) -> None:
        self.dataset = (
            DATASETS.build(dataset) if isinstance(dataset, dict) else dataset)
        self.resolutions = _check_resolutions(resolutions, type(self).__name__)
        self.size_keys = tuple(size_keys)
        self.metainfo = getattr(self.dataset, 'metainfo', {})
        self.pipelines = {}
        for res in self.resolutions:
            steps = []
            for transform in pipeline:
                transform = copy.deepcopy(dict(transform))
                for key in self.size_keys:
                    if key in transform:
                        transform[key] = res
                steps.append(transform)
            self.pipelines[res] = Compose([TRANSFORMS.build(t) for t in steps])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, res = key if isinstance(key, tuple) else (key,
                                                         self.resolutions[0])
        if res not in self.pipelines:
            raise KeyError(f'{type(self).__name__}: no pipeline for '
                           f'resolution {res} (have {self.resolutions})')
        return self.pipelines[res](self.dataset.get_data_info(index))
