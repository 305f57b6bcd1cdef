"""mmeac's compiled CPU kernels (``mmeac._C``) and the switch between them
and the pure-PyTorch paths.

The kernels are compiled when mmeac is installed with torch importable
(``bash tools/setup_env.sh`` does it; see ``setup.py``), for the vector
instructions of the machine that builds them. They cover float32 on the
CPU: the core-periphery attention forward and the inference-time SwiGLU
gate. Everything else, and every input they do not cover, runs on ATen
kernels, which are also the fallback when ``mmeac._C`` was not built.

Which path runs is set by the environment variable ``MMEAC_OPS`` (read at
import) or :func:`set_ops_backend`:

* ``'auto'`` (default): the compiled kernels where built and applicable;
* ``'compiled'``: the same, but a ``RuntimeError`` if they were not built
  (so a missing build cannot go unnoticed);
* ``'aten'``: never the compiled kernels (for comparisons).
"""
import contextlib
import importlib
import os
from typing import Iterator, Optional

import torch
from torch import Tensor

__all__ = [
    'compiled_ops_available', 'get_ops_backend', 'set_ops_backend',
    'ops_backend', 'use_compiled_kernels'
]

BACKENDS = ('auto', 'compiled', 'aten')


def _try_load() -> Optional[BaseException]:
    """Import ``mmeac._C`` (its load registers the ``mmeac_C`` kernels);
    the exception if that fails."""
    try:
        importlib.import_module('mmeac._C')
    except (ImportError, OSError) as exc:
        return exc
    return None


def _check_backend(backend: str, source: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f'{source} must be one of {list(BACKENDS)}, got '
                         f'{backend!r}')
    return backend


_LOAD_ERROR = _try_load()
_state = dict(backend=_check_backend(
    os.environ.get('MMEAC_OPS', 'auto'), 'MMEAC_OPS'))


def compiled_ops_available() -> bool:
    """Whether ``mmeac._C`` was built and loads."""
    return _LOAD_ERROR is None


def _missing_message() -> str:
    return ('mmeac\'s compiled kernels (mmeac._C) are not available: '
            f'{_LOAD_ERROR}. Build them with `MMEAC_WITH_OPS=1 pip install '
            '--no-build-isolation -e .` (needs torch and a C++20 compiler), '
            'or use the ATen paths with MMEAC_OPS=auto or aten.')


def get_ops_backend() -> str:
    """The current backend: ``'auto'``, ``'compiled'`` or ``'aten'``."""
    return _state['backend']


def set_ops_backend(backend: str) -> None:
    """Select the backend (see the module doc).

    Raises:
        ValueError: ``backend`` is not one of ``BACKENDS``.
        RuntimeError: ``'compiled'`` without a built ``mmeac._C``.
    """
    _check_backend(backend, 'backend')
    if backend == 'compiled' and not compiled_ops_available():
        raise RuntimeError(_missing_message())
    _state['backend'] = backend


@contextlib.contextmanager
def ops_backend(backend: str) -> Iterator[None]:
    """Use ``backend`` inside a ``with`` block."""
    previous = get_ops_backend()
    set_ops_backend(backend)
    try:
        yield
    finally:
        _state['backend'] = previous


def use_compiled_kernels(*tensors: Tensor) -> bool:
    """Whether a compiled kernel should run on ``tensors``: float32 CPU
    tensors, the backend not ``'aten'`` and ``mmeac._C`` built.

    Raises:
        RuntimeError: backend ``'compiled'`` (e.g. from ``MMEAC_OPS``) but
            ``mmeac._C`` is not built.
    """
    backend = _state['backend']
    if backend == 'aten':
        return False
    if _LOAD_ERROR is not None:
        if backend == 'compiled':
            raise RuntimeError(_missing_message())
        return False
    return all(t.device.type == 'cpu' and t.dtype == torch.float32
               for t in tensors)


if _LOAD_ERROR is None:

    @torch.library.register_fake('mmeac_C::swiglu_')
    def _swiglu_fake(h: Tensor, bias: Tensor) -> None:
        """In place: nothing new to describe (lets torch.compile trace the
        inference FFN)."""
        return None
