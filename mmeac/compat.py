"""Compatibility fixes for the released OpenMMLab stack on current PyTorch.

Applied once when :mod:`mmeac` is imported (:func:`apply_all` is idempotent).

**mmengine checkpoints under ``torch.load(weights_only=True)``.** Since
torch 2.6, ``torch.load`` defaults to ``weights_only=True``. mmengine 0.10.7
calls ``torch.load`` without ``weights_only``, and its checkpoints hold more
than tensors: the message hub's ``HistoryBuffer`` objects (whose pickles carry
numpy arrays, numpy dtypes and ``getattr(HistoryBuffer, 'mean')`` style
references to the statistics methods) and numpy scalars such as the ``eta``
or ``best_score`` runtime info. So ``Runner.resume`` / ``resume=True`` and
``load_from`` fail with ``Weights only load failed``.

The fix keeps weights-only loading on. While, and only while, mmengine loads a
checkpoint (every path goes through
:meth:`mmengine.runner.checkpoint.CheckpointLoader.load_checkpoint`: local
files, URLs, ``Runner.load_checkpoint`` / ``resume``, ``load_checkpoint`` and
``init_cfg=dict(type='Pretrained')``), the small allowlist
:func:`mmengine_safe_globals` is added to torch's safe globals. It holds
``HistoryBuffer``, mmengine's ``ConfigDict``, the numpy array / scalar / dtype
reconstructors and a restricted ``getattr`` that only resolves
``HistoryBuffer``'s registered statistics methods. A plain ``torch.load``
elsewhere keeps torch's default allowlist.

**mmengine's package lookup without ``pkg_resources``.** torch 2.14 requires
``setuptools>=77``, so a fresh environment gets a setuptools (>= 81) that no
longer ships ``pkg_resources``. mmengine 0.10.7 resolves the package part of
config paths such as ``_base_ = ['mmseg::_base_/default_runtime.py']`` (and
``mmengine.hub.get_config('mmdet::...')``) with ``pkg_resources``, which then
fails with ``No module named 'pkg_resources'``. :func:`_patch_package_utils`
swaps ``is_installed``, ``get_installed_path`` and ``package2module`` for
``importlib.metadata`` versions with the same behaviour.
"""
import contextlib
import functools
import importlib.util
import os.path as osp
import pickle
from importlib import metadata
from typing import Any, Callable, Iterator, List, Tuple, Union

import numpy as np
import torch

SafeGlobal = Union[Callable, Tuple[Callable, str]]

_PATCHED_FLAG = '_mmeac_weights_only_patch'


def _numpy_multiarray() -> Any:
    """The module that holds numpy's ``_reconstruct`` and ``scalar``."""
    core = getattr(np, '_core', None)  # numpy >= 2
    if core is None or not hasattr(core, 'multiarray'):
        core = np.core  # numpy 1.x
    return core.multiarray


# HistoryBuffer's default statistics methods; the class-level registry
# ``HistoryBuffer._statistics_methods`` is only filled by the first instance.
_HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to what mmengine's ``HistoryBuffer`` pickles.

    Python pickles the methods stored in ``HistoryBuffer._statistics_methods``
    as ``builtins.getattr(HistoryBuffer, 'mean')``. Registering the real
    ``getattr`` would let a checkpoint read any attribute of any allowlisted
    object, so only those statistics methods are resolved.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    from mmengine.logging import HistoryBuffer

    allowed = _HISTORY_BUFFER_STATISTICS.union(
        HistoryBuffer._statistics_methods)
    if (obj is HistoryBuffer and isinstance(name, str) and name in allowed
            and callable(HistoryBuffer.__dict__.get(name))):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'mmeac weights-only allowlist: getattr({obj!r}, {name!r}) is not '
        'allowed in an mmengine checkpoint (only HistoryBuffer statistics '
        'methods are)')


def mmengine_safe_globals() -> List[SafeGlobal]:
    """Globals that mmengine checkpoints need under weights-only loading.

    Found by saving checkpoints with a real ``mmengine.runner.Runner`` and
    listing them with ``torch.serialization.get_unsafe_globals_in_checkpoint``.
    Both numpy 1.x (``numpy.core``) and numpy 2.x (``numpy._core``) names of
    the reconstructors are mapped, so checkpoints written under either numpy
    load under the installed one.

    Returns:
        list: Objects and ``(object, 'module.name')`` pairs for
        :func:`torch.serialization.add_safe_globals`.
    """
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer

    multiarray = _numpy_multiarray()
    safe: List[SafeGlobal] = [
        HistoryBuffer,
        ConfigDict,
        np.ndarray,
        np.dtype,
        (_history_buffer_getattr, 'builtins.getattr'),
    ]
    for core in ('numpy.core', 'numpy._core'):
        safe.append(
            (multiarray._reconstruct, f'{core}.multiarray._reconstruct'))
        safe.append((multiarray.scalar, f'{core}.multiarray.scalar'))
    # numpy >= 1.25 builds dtype instances of per-dtype classes
    # (numpy.dtypes.Float64DType, ...); their state is set by BUILD.
    for code in '?bBhHiIlLqQefdgFDGSUV':
        safe.append(type(np.dtype(code)))
    return list(dict.fromkeys(safe))  # unique, order kept


@contextlib.contextmanager
def mmengine_checkpoint_globals() -> Iterator[None]:
    """Allowlist :func:`mmengine_safe_globals` for the duration of the block.

    Only the entries that are not already registered are added and later
    removed, so globals a user registered before are left in place.
    """
    present = set(torch.serialization.get_safe_globals())
    missing = [g for g in mmengine_safe_globals() if g not in present]
    with torch.serialization.safe_globals(missing):
        yield


def _patch_checkpoint_loader() -> bool:
    """Load mmengine checkpoints with the allowlist (weights-only stays on).

    Returns:
        bool: True if the patch was applied now, False if it already was.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    current = CheckpointLoader.__dict__['load_checkpoint']
    if getattr(current.__func__, _PATCHED_FLAG, False):
        return False
    original = current.__func__

    @functools.wraps(original)
    def load_checkpoint(cls, filename, map_location=None, logger='current'):
        with mmengine_checkpoint_globals():
            return original(cls, filename, map_location, logger)

    setattr(load_checkpoint, _PATCHED_FLAG, True)
    CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)
    return True


def is_installed(package: str) -> bool:
    """Whether a distribution or an importable module ``package`` exists.

    Same contract as :func:`mmengine.utils.is_installed`, without
    ``pkg_resources``.
    """
    try:
        metadata.distribution(package)
        return True
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def package2module(package: str) -> str:
    """Top-level module of the distribution ``package`` (``top_level.txt``).

    Raises:
        ValueError: If the distribution records no top-level module.
    """
    top_level = metadata.distribution(package).read_text('top_level.txt')
    if top_level and top_level.split():
        return top_level.split()[0]
    raise ValueError(f'can not infer the module name of {package}')


def get_installed_path(package: str) -> str:
    """Installed directory of ``package`` (a distribution or module name).

    Same contract as :func:`mmengine.utils.get_installed_path`, without
    ``pkg_resources``.

    Raises:
        PackageNotFoundError: If ``package`` is neither installed nor
            importable.
        RuntimeError: If it is a namespace package.
    """
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        if spec is None:
            raise
        if spec.origin is None:
            raise RuntimeError(
                f'{package} is a namespace package, which is invalid for '
                '`get_install_path`')
        return osp.dirname(spec.origin)
    location = str(dist.locate_file(''))
    possible_path = osp.join(location, package)
    if osp.exists(possible_path):
        return possible_path
    module = package2module(package)
    module_path = osp.join(location, module)
    if not osp.exists(module_path):
        # an editable install lives outside site-packages
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin is not None:
            return osp.dirname(spec.origin)
    return module_path


def _patch_package_utils() -> bool:
    """Use :mod:`importlib.metadata` in mmengine's package lookup.

    Returns:
        bool: True if the patch was applied now, False if it already was.
    """
    import mmengine.config.config as config_module
    import mmengine.hub.hub as hub_module
    import mmengine.utils as utils_module
    import mmengine.utils.package_utils as package_utils

    if package_utils.get_installed_path is get_installed_path:
        return False
    replacements = dict(
        is_installed=is_installed,
        get_installed_path=get_installed_path,
        package2module=package2module)
    for module in (package_utils, utils_module, config_module, hub_module):
        for name, func in replacements.items():
            if hasattr(module, name):
                setattr(module, name, func)
    return True


def apply_all() -> None:
    """Apply every compatibility fix (idempotent)."""
    _patch_checkpoint_loader()
    _patch_package_utils()


apply_all()
