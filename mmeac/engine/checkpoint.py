"""Checkpoint files under faults and bad input: read, match, find, write.

* :func:`read_checkpoint` loads a checkpoint file or raises
  :class:`CheckpointError` with one line saying what is wrong with it
  (missing, empty, truncated, not a checkpoint);
* :func:`match_state_dict` compares a checkpoint's weights with a model
  (names and shapes) and :func:`describe_mismatch` says what does not fit;
* :func:`find_resume_checkpoint` picks the newest *readable* training
  checkpoint of a work dir (``last_checkpoint`` and the ``iter_N.pth`` /
  ``epoch_N.pth`` files), skipping unreadable ones;
* :func:`atomic_write_bytes` writes a file through
  :func:`mmeac.utils.fileio.atomic_path`, so that a crash leaves the old
  file or the new one, never a cut one.
"""
import os
import os.path as osp
import re
import zipfile
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

import torch

from ..utils.fileio import TMP_PREFIX, atomic_path, fsync_dir

__all__ = [
    'CheckpointError', 'read_checkpoint', 'weights_of', 'match_state_dict',
    'describe_mismatch', 'check_resumable', 'find_resume_checkpoint',
    'atomic_write_bytes', 'fsync_dir', 'TMP_PREFIX', 'StateMatch'
]

#: Training checkpoints written by ``CheckpointHook``'s default templates.
_TRAIN_CKPT = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message is one line."""


def _first_line(err: BaseException) -> str:
    """``Type: first sentence of the first line``."""
    text = str(err).strip().splitlines()
    if not text:
        return type(err).__name__
    return f"{type(err).__name__}: {text[0].split('. ')[0].rstrip('.')}"


def read_checkpoint(path: str, map_location='cpu') -> dict:
    """Load a checkpoint file.

    Args:
        path: A local file path.
        map_location: Passed to :func:`torch.load`.

    Returns:
        dict: The checkpoint (a dict; its weights are :func:`weights_of`).

    Raises:
        CheckpointError: The file is missing, empty, truncated or corrupted,
            or holds no tensors by name.
    """
    if not osp.exists(path):
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if not osp.isfile(path):
        raise CheckpointError(f"checkpoint '{path}' is not a file")
    try:
        size = osp.getsize(path)
        if size == 0:
            raise CheckpointError(f"checkpoint '{path}' is empty (0 bytes)")
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise CheckpointError(
                    f"checkpoint '{path}' is corrupted (member '{bad}' fails "
                    'its CRC check)')
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except CheckpointError:
        raise
    except Exception as err:  # torch / pickle / zip raise many kinds
        raise CheckpointError(
            f"checkpoint '{path}' cannot be read, it is cut short or not a "
            f'PyTorch checkpoint ({_first_line(err)})') from None
    weights_of(ckpt, path)  # raises when it holds no weights
    return ckpt


def weights_of(ckpt, path: str = '<checkpoint>') -> Dict[str, torch.Tensor]:
    """The ``name -> tensor`` weights of a loaded checkpoint.

    ``ckpt['state_dict']`` (or ``ckpt['model']``, or the dict itself when all
    its values are tensors), the ``module.`` prefix of wrapped models
    removed.

    Raises:
        CheckpointError: If there are no such weights.
    """
    state = None
    if isinstance(ckpt, Mapping):
        for key in ('state_dict', 'model'):
            if isinstance(ckpt.get(key, None), Mapping):
                state = ckpt[key]
                break
        else:
            if ckpt and all(
                    isinstance(v, torch.Tensor) for v in ckpt.values()):
                state = ckpt
    if not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor)
            for k, v in state.items()):
        what = (f'a dict with keys {sorted(map(str, ckpt))[:5]}' if isinstance(
            ckpt, Mapping) else f'a {type(ckpt).__name__}')
        raise CheckpointError(
            f"'{path}' is not a model checkpoint: it holds {what}, no "
            "'state_dict' of named tensors")
    return {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in state.items()
    }


class StateMatch(NamedTuple):
    """How a checkpoint's weights fit a model (names after ``prefix``)."""
    loaded: List[str]
    missing: List[str]
    unexpected: List[str]
    mismatched: List[Tuple[str, tuple, tuple]]  # name, file, model shape
    prefix: str  # prepended to the file's names ('' or e.g. 'backbone.')

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)


def match_state_dict(
    model_shapes: Mapping[str, tuple],
    state: Mapping[str, torch.Tensor],
    prefixes: Tuple[str, ...] = ('', 'backbone.')
) -> StateMatch:
    """Compare a checkpoint's weights with a model's ``name -> shape``.

    Each prefix in ``prefixes`` is tried on the file's names (``''``: as
    they are; ``'backbone.'``: a backbone-only file in a full model) and the
    one under which most tensors fit is returned.
    """
    best = None
    for prefix in prefixes:
        names = {prefix + k: k for k in state}
        loaded, mismatched = [], []
        for name, key in names.items():
            if name not in model_shapes:
                continue
            file_shape = tuple(state[key].shape)
            if file_shape == tuple(model_shapes[name]):
                loaded.append(name)
            else:
                mismatched.append(
                    (name, file_shape, tuple(model_shapes[name])))
        match = StateMatch(
            loaded=loaded,
            missing=[n for n in model_shapes if n not in names],
            unexpected=[n for n in names if n not in model_shapes],
            mismatched=mismatched,
            prefix=prefix)
        if best is None or len(match.loaded) > len(best.loaded):
            best = match
    return best


def _shape(shape: tuple) -> str:
    return 'x'.join(map(str, shape)) or 'scalar'


def describe_mismatch(match: StateMatch, limit: int = 3) -> str:
    """One line: counts and the first names of what does not fit."""
    parts = []
    if match.mismatched:
        shown = ', '.join(f'{n} ({_shape(f)} in the file, {_shape(m)} in the '
                          'model)' for n, f, m in match.mismatched[:limit])
        parts.append(f'{len(match.mismatched)} of different shape: {shown}')
    for what, names in (('missing from the file', match.missing),
                        ('not in the model', match.unexpected)):
        if names:
            more = ', ...' if len(names) > limit else ''
            parts.append(f'{len(names)} {what}: '
                         f"{', '.join(names[:limit])}{more}")
    return '; '.join(parts)


def atomic_write_bytes(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(data)


def _is_resumable(ckpt) -> Optional[str]:
    """``None`` if ``ckpt`` holds a training state, else what it lacks."""
    meta = ckpt.get('meta', None) if isinstance(ckpt, Mapping) else None
    if not isinstance(meta, Mapping) or 'iter' not in meta \
            or 'epoch' not in meta:
        return "no training state ('meta' with epoch and iter)"
    if 'message_hub' not in ckpt:
        return "no training state ('message_hub')"
    return None


def check_resumable(ckpt: dict, path: str) -> None:
    """Raise :class:`CheckpointError` if training cannot resume from it."""
    lack = _is_resumable(ckpt)
    if lack is not None:
        raise CheckpointError(
            f"checkpoint '{path}' holds weights but {lack}, so training "
            "cannot resume from it; start from its weights with "
            f"--cfg-options load_from='{path}' instead")


def find_resume_checkpoint(work_dir: str) -> Tuple[Optional[str], List[str]]:
    """The newest readable training checkpoint of a work dir.

    Candidates are the file named in ``work_dir/last_checkpoint`` and the
    ``iter_N.pth`` / ``epoch_N.pth`` files of the work dir, newest
    (modification time) first; an empty or stale ``last_checkpoint`` is
    skipped.

    Returns:
        tuple: The path (``None`` if there is none) and one warning per
        skipped candidate.
    """
    warnings: List[str] = []
    candidates: List[str] = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        try:
            with open(pointer, encoding='utf-8') as f:
                named = f.read().strip()
        except (OSError, UnicodeDecodeError) as err:
            named = ''
            warnings.append(f"cannot read '{pointer}' ({_first_line(err)})")
        if not named:
            warnings.append(f"'{pointer}' is empty; looking for checkpoints "
                            f"in '{work_dir}'")
        elif '://' in named:
            return named, warnings  # remote storage: not checked here
        elif not osp.isfile(named):
            warnings.append(f"'{pointer}' names '{named}', which does not "
                            f"exist; looking for checkpoints in '{work_dir}'")
        else:
            candidates.append(named)
    if osp.isdir(work_dir):
        for name in os.listdir(work_dir):
            path = osp.join(work_dir, name)
            if _TRAIN_CKPT.match(name) and osp.isfile(path) and not any(
                    osp.samefile(path, c) for c in candidates):
                candidates.append(path)
    candidates.sort(key=lambda p: osp.getmtime(p), reverse=True)
    for path in candidates:
        try:
            ckpt = read_checkpoint(path)
            check_resumable(ckpt, path)
        except CheckpointError as err:
            warnings.append(f'skipping {err}')
            continue
        return path, warnings
    return None, warnings
