"""A ``CheckpointHook`` whose files survive a crash at any moment.

MMEngine's ``CheckpointHook`` removes the oldest kept checkpoint *before* it
writes the new one and writes both the checkpoint and ``last_checkpoint`` in
place, so a process killed while saving can leave no usable checkpoint.
:class:`SafeCheckpointHook` takes the same arguments and

* writes every checkpoint file and ``last_checkpoint`` through a temporary
  sibling, ``fsync`` and an atomic ``rename`` (:class:`AtomicLocalBackend`,
  a registered MMEngine file backend), so a file is either the old one or
  the complete new one;
* removes an outdated checkpoint (``max_keep_ckpts``, the previous best)
  only after the new one is on disk and ``last_checkpoint`` names it;
* removes the temporary files a killed run left behind when training
  starts again.

Remote ``out_dir`` / ``backend_args`` keep MMEngine's behaviour.
"""
import contextlib
import os
import os.path as osp
from collections import deque
from typing import Iterator, List, Union

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ..checkpoint import TMP_PREFIX, atomic_write_bytes

#: Name of the atomic local file backend in MMEngine's backend registry.
ATOMIC_BACKEND = 'mmeac_atomic_local'


@register_backend(ATOMIC_BACKEND, force=True)
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose ``put`` / ``put_text`` are atomic."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), str(filepath))


class _DeferredRemoval:
    """Forwards to a file backend but queues ``remove`` / ``rmtree``."""

    def __init__(self, backend, queue: List[str]) -> None:
        self._backend = backend
        self._queue = queue

    def remove(self, path) -> None:
        self._queue.append(str(path))

    def rmtree(self, path) -> None:
        self._queue.append(str(path))

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with atomic writes and remove-after-write.

    Takes the arguments of :class:`mmengine.hooks.CheckpointHook`.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        out_dir = '' if self.out_dir is None else str(self.out_dir)
        self.atomic = (
            self.backend_args is None and self.file_client_args is None
            and '://' not in out_dir)
        if self.atomic:
            self.backend_args = dict(backend=ATOMIC_BACKEND)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.atomic and is_main_process():
            for directory in {str(self.out_dir), runner.work_dir}:
                self._remove_stale_tmp(runner, directory)

    @staticmethod
    def _remove_stale_tmp(runner, directory: str) -> None:
        """Remove the temporary files of an interrupted save."""
        if not osp.isdir(directory):
            return
        for name in os.listdir(directory):
            path = osp.join(directory, name)
            if name.startswith(TMP_PREFIX) and osp.isfile(path):
                os.remove(path)
                runner.logger.info(f'removed {path}, left by an interrupted '
                                   'checkpoint save')

    def _remove(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed checkpoints
            self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self.atomic:
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated: List[Union[int, str]] = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            ids = list(self.keep_ckpt_ids) + [step]
            outdated = ids[:-self.max_keep_ckpts]
            self.keep_ckpt_ids = deque(ids[-self.max_keep_ckpts:],
                                       self.max_keep_ckpts)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        # the new checkpoint is on disk: point at it, then drop old ones
        atomic_write_bytes(
            str(self.last_ckpt).encode('utf-8'),
            osp.join(runner.work_dir, 'last_checkpoint'))
        for old in outdated:
            if old != step:
                self._remove(
                    self.file_backend.join_path(
                        self.out_dir, self.filename_tmpl.format(old)))

    @contextlib.contextmanager
    def _removals_deferred(self) -> Iterator[List[str]]:
        queue: List[str] = []
        backend = self.file_backend
        self.file_backend = _DeferredRemoval(backend, queue)
        try:
            yield queue
        finally:
            self.file_backend = backend

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not self.atomic:
            return super()._save_best_checkpoint(runner, metrics)
        with self._removals_deferred() as queue:
            super()._save_best_checkpoint(runner, metrics)
        keep = {str(self.last_ckpt)}
        keep.add(str(getattr(self, 'best_ckpt_path', None)))
        keep.update(
            map(str, (getattr(self, 'best_ckpt_path_dict', None)
                      or {}).values()))
        for path in queue:
            if path not in keep:
                self._remove(path)
