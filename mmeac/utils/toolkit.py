"""Helpers shared by ``tools/train.py`` and ``tools/test.py``.

The tools are task-agnostic: the config's ``default_scope`` (``mmseg``,
``mmdet`` or ``mmpretrain``) decides which library builds the model, data and
metrics. :func:`import_mmeac` applies the compatibility fixes for the current
PyTorch and registers the mmeac modules in MMEngine's root registries; the
tools call it once the command line and the config have been checked (so bad
input fails fast) and before anything is built.
"""
import contextlib
import importlib.util
import os
import os.path as osp
import sys
import warnings
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config

#: Value of ``--launcher`` that means "no distributed run".
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


class ToolError(Exception):
    """A user-facing error: printed as one line, the tool exits with 2."""


def fail(prog: str, msg: str) -> None:
    """Print ``prog: error: msg`` on stderr and exit with status 2.

    Under a multi-process launcher only rank 0 prints, so the message is not
    repeated once per process.
    """
    if os.environ.get('RANK', '0') == '0':
        print(
            f'{osp.basename(prog)}: error: {msg}', file=sys.stderr, flush=True)
    sys.exit(2)


def import_mmeac() -> None:
    """Import mmeac: compatibility fixes and registrations."""
    import mmeac  # noqa: F401


def resolve_config_path(path: str) -> str:
    """Resolve ``pkg::rel/path.py`` to a config file shipped in a package.

    OpenMMLab wheels ship their configs in ``<pkg>/.mim/configs``; a plain
    path is returned unchanged.

    Raises:
        ToolError: If the file (or the package) does not exist.
    """
    if '::' not in path:
        if not osp.isfile(path):
            raise ToolError(f"config file '{path}' does not exist")
        return path
    package, rel = path.split('::', 1)
    spec = importlib.util.find_spec(package) if package.isidentifier() \
        else None
    if spec is None or not spec.submodule_search_locations:
        raise ToolError(f"config '{path}': package '{package}' is not "
                        'installed')
    pkg_dir = list(spec.submodule_search_locations)[0]
    for cand in (osp.join(pkg_dir, '.mim', 'configs',
                          rel), osp.join(pkg_dir, 'configs', rel)):
        if osp.isfile(cand):
            return cand
    raise ToolError(f"config '{path}' does not exist")


def load_config(path: str, cfg_options: Optional[dict]) -> Config:
    """Load a config file (or a ``pkg::path`` config) and merge options.

    Raises:
        ToolError: If the config does not exist.
    """
    resolved = resolve_config_path(path)
    # configs inheriting ``pkg::`` bases need mmeac's package-lookup fix
    import_mmeac()
    cfg = Config.fromfile(resolved)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def default_work_dir(cfg: Config, config_path: str,
                     work_dir: Optional[str]) -> str:
    """``--work-dir`` > ``cfg.work_dir`` > ``./work_dirs/<config stem>``."""
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir', None) is not None:
        return cfg.work_dir
    stem = osp.splitext(osp.basename(config_path.split('::')[-1]))[0]
    return osp.join('./work_dirs', stem)


def _dataset_roots(ds_cfg, where: str) -> Iterator[Tuple[str, str]]:
    """Yield ``(data_root, config key)`` of a dataset config and wrappers."""
    if isinstance(ds_cfg, dict):
        root = ds_cfg.get('data_root', None)
        if isinstance(root, str) and root:
            yield root, f'{where}.data_root'
        if 'dataset' in ds_cfg:
            yield from _dataset_roots(ds_cfg['dataset'], f'{where}.dataset')
        if isinstance(ds_cfg.get('datasets', None), (list, tuple)):
            for i, sub in enumerate(ds_cfg['datasets']):
                yield from _dataset_roots(sub, f'{where}.datasets[{i}]')
    elif isinstance(ds_cfg, (list, tuple)):
        for i, sub in enumerate(ds_cfg):
            yield from _dataset_roots(sub, f'{where}[{i}]')


def check_data_roots(cfg: Config, loaders: List[str]) -> None:
    """Check that the ``data_root`` of each used dataloader exists.

    Args:
        cfg: The merged config.
        loaders: Dataloader keys to check, e.g. ``['train_dataloader']``.

    Raises:
        ToolError: Naming the first missing dataset root and its config key.
    """
    for key in loaders:
        loader = cfg.get(key, None)
        if not isinstance(loader, dict):
            continue
        for root, where in _dataset_roots(
                loader.get('dataset', None), f'{key}.dataset'):
            if '://' in root:  # remote storage backends are not checked
                continue
            if not osp.isdir(root):
                raise ToolError(f"dataset root '{root}' ({where}) does not "
                                'exist; generate the built-in data with '
                                '`python tools/misc/make_builtin_data.py` '
                                'or set it with --cfg-options')


def _eac_backbone_cfgs(obj, where: str) -> Iterator[Tuple[dict, str]]:
    """Every ``EACViT`` config dict inside ``obj`` with its config key."""
    if isinstance(obj, dict):
        kind = obj.get('type', None)
        name = getattr(kind, '__name__', kind)
        if isinstance(name, str) and name.split('.')[-1] == 'EACViT':
            yield obj, where
        for key, value in obj.items():
            yield from _eac_backbone_cfgs(value, f'{where}.{key}')
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _eac_backbone_cfgs(value, f'{where}[{i}]')


def check_eac_backbones(cfg: Config) -> None:
    """Build each ``EACViT`` of ``cfg.model`` once (no checkpoint loading),
    so that a bad setting (a core budget that is not a multiple of the
    chunk, more cores than the bank, ...) is reported as one line before
    the runner starts, instead of as a traceback from inside it.

    Raises:
        ToolError: ``model...backbone: <the backbone's ValueError>``.
    """
    import copy

    from mmengine.registry import MODELS
    for backbone_cfg, where in _eac_backbone_cfgs(cfg.get('model', None),
                                                  'model'):
        backbone_cfg = copy.deepcopy(dict(backbone_cfg))
        backbone_cfg.pop('init_cfg', None)
        backbone_cfg['type'] = 'EACViT'
        try:
            MODELS.build(backbone_cfg)
        except ValueError as err:
            raise ToolError(f'{where}: {err}') from None
    # a model class may check its whole config (e.g. EACDistiller: teacher
    # checkpoint, grid alignment) before the runner writes anything
    model_cfg = cfg.get('model', None)
    kind = model_cfg.get('type', None) if isinstance(model_cfg, dict) else None
    try:
        model_cls = MODELS.get(kind) if isinstance(kind, str) else kind
    except Exception:  # an unknown scope: the runner will report it
        model_cls = None
    preflight = getattr(model_cls, 'preflight', None)
    if callable(preflight):
        try:
            preflight(copy.deepcopy(dict(model_cfg)))
        except ValueError as err:
            raise ToolError(f'model: {err}') from None


def _replace_syncbn(obj) -> int:
    """Replace ``SyncBN`` norm configs by ``BN`` in place; return count."""
    count = 0
    if isinstance(obj, dict):
        if obj.get('type', None) in ('SyncBN', 'MMSyncBN'):
            obj['type'] = 'BN'
            count += 1
        for value in obj.values():
            count += _replace_syncbn(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            count += _replace_syncbn(value)
    return count


@contextlib.contextmanager
def _cpu_set_device() -> Iterator[None]:
    """Make ``torch.cuda.set_device`` a no-op while CUDA is unavailable.

    MMEngine's launchers call it unconditionally, which raises on a machine
    without GPU.
    """
    import torch
    original = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = original


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Record the launcher and prepare a distributed run.

    With CUDA, a process asking for a local rank beyond the visible GPUs is
    an error. Without CUDA the run goes over the ``gloo`` backend: the
    process group is initialised here (MMEngine's launchers would call
    ``torch.cuda.set_device``), DDP is built without ``device_ids`` and
    ``SyncBN`` layers become ``BN`` (SyncBatchNorm needs GPU tensors).

    Raises:
        ToolError: If more GPUs are asked for than the node has.
    """
    cfg.launcher = launcher
    if launcher == 'none':
        return
    import torch
    from mmengine.dist import init_dist, is_distributed
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        local_size = int(os.environ.get('LOCAL_WORLD_SIZE', '0') or 0)
        local_rank = int(os.environ.get('LOCAL_RANK', '0') or 0)
        if local_size > count or local_rank >= count:
            raise ToolError(
                f'{max(local_size, local_rank + 1)} GPU processes per node '
                f'asked for, but this node has {count} GPU(s)')
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = dict(env_cfg.get('dist_cfg', None) or {})
    dist_cfg['backend'] = 'gloo'
    env_cfg['dist_cfg'] = dist_cfg
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif wrapper.get(
            'type',
            'MMDistributedDataParallel') in ('MMDistributedDataParallel',
                                             'DistributedDataParallel'):
        wrapper.setdefault('device_ids', None)
    replaced = _replace_syncbn(cfg.get('model', None))
    if replaced and os.environ.get('RANK', '0') == '0':
        warnings.warn(f'no CUDA: {replaced} SyncBN config(s) replaced by BN '
                      'for the CPU (gloo) run')
    if not is_distributed():
        kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        with _cpu_set_device():
            init_dist(launcher, backend='gloo', **kwargs)


def build_runner(cfg: Config):
    """Build the runner (``cfg.runner_type`` if set, else MMEngine's)."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmeac.engine import add_randomness_hook
    add_randomness_hook(cfg)  # exact resume, one budget per optimizer step
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def finish_distributed() -> None:
    """Tear the process group down before the interpreter exits.

    Left to interpreter shutdown, a gloo group can abort a rank with
    ``terminate called without an active exception`` (seen once in CI with 2
    CPU processes); an explicit barrier + destroy ends every rank cleanly.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
