"""Helpers shared by the tools (``tools/``, ``demo/``).

The tools are task-agnostic: the config's ``default_scope`` (``mmseg``,
``mmdet`` or ``mmpretrain``) decides which library builds the model, data and
metrics.

Importing this module imports :mod:`mmeac` (the parent package), so torch,
the compatibility fixes for the current PyTorch and the mmeac registrations
come with it. A tool therefore imports it inside ``main()``, after its
argument parser has run; ``tools/train.py`` and ``tools/test.py`` then
answer ``--help`` and the command lines argparse rejects without importing
torch (the other tools take shared options from :mod:`mmeac.utils.cli`).
"""
import contextlib
import importlib.util
import os
import os.path as osp
import sys
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Type

from mmengine.config import Config

from .fileio import atomic_path


class ToolError(Exception):
    """A user-facing error: printed as one line, the tool exits with 2."""


def error(prog: str, msg, status: int = 2) -> int:
    """Print ``prog: error: msg`` on stderr; return ``status``.

    For a tool's ``main`` that returns its exit status:
    ``return error(PROG, err)``.
    """
    print(f'{osp.basename(prog)}: error: {msg}', file=sys.stderr, flush=True)
    return status


def fail(prog: str, msg: str) -> None:
    """Print ``prog: error: msg`` on stderr and exit with status 2.

    Under a multi-process launcher only rank 0 prints, so the message is not
    repeated once per process.
    """
    if os.environ.get('RANK', '0') == '0':
        error(prog, msg)
    sys.exit(2)


def import_mmeac() -> None:
    """Import mmeac: compatibility fixes and registrations."""
    import mmeac  # noqa: F401


def resolve_config_path(path: str,
                        exc: Type[Exception] = ToolError,
                        quote: str = "'") -> str:
    """Resolve ``pkg::rel/path.py`` to a config file shipped in a package.

    OpenMMLab wheels ship their configs in ``<pkg>/.mim/configs``; a plain
    path is returned unchanged.

    Args:
        path: A config file or ``pkg::rel/path.py``.
        exc: The exception raised when it does not resolve.
        quote: Put around the path and package in the message.

    Raises:
        exc: If the file (or the package) does not exist.
    """
    q = quote
    if '::' not in path:
        if not osp.isfile(path):
            raise exc(f'config file {q}{path}{q} does not exist')
        return path
    package, rel = path.split('::', 1)
    spec = importlib.util.find_spec(package) if package.isidentifier() \
        else None
    if spec is None or not spec.submodule_search_locations:
        raise exc(f'config {q}{path}{q}: package {q}{package}{q} is not '
                  'installed')
    pkg_dir = list(spec.submodule_search_locations)[0]
    for cand in (osp.join(pkg_dir, '.mim', 'configs',
                          rel), osp.join(pkg_dir, 'configs', rel)):
        if osp.isfile(cand):
            return cand
    raise exc(f'config {q}{path}{q} does not exist')


def load_config(path: str, cfg_options: Optional[dict]) -> Config:
    """Load a config file (or a ``pkg::path`` config) and merge options.

    Raises:
        ToolError: If the config does not exist.
    """
    resolved = resolve_config_path(path)
    # configs inheriting ``pkg::`` bases need mmeac's package-lookup fix
    import_mmeac()
    try:
        cfg = Config.fromfile(resolved)
    except SyntaxError as err:
        raise ToolError(_syntax_error_line(path, err)) from None
    except Exception as err:  # a missing base, a bad import, ...
        raise ToolError(f"cannot load config '{path}': "
                        f'{_first_line(err)}') from None
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as err:
            raise ToolError(f"--cfg-options do not fit config '{path}': "
                            f'{_first_line(err)}') from None
    return cfg


def _first_line(err: BaseException) -> str:
    """``Type: first line of the message``."""
    lines = str(err).strip().splitlines()
    return f'{type(err).__name__}: {lines[0]}' if lines else \
        type(err).__name__


def _find_syntax_error(path: str, seen=None) -> Optional[SyntaxError]:
    """Parse a config file and its local ``_base_`` files; first error."""
    import ast
    seen = set() if seen is None else seen
    path = osp.abspath(path)
    if path in seen or not osp.isfile(path):
        return None
    seen.add(path)
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
    except SyntaxError as err:
        return err
    except (OSError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets):
            try:
                bases = ast.literal_eval(node.value)
            except ValueError:
                return None
            for base in [bases] if isinstance(bases, str) else bases:
                if isinstance(base, str) and '::' not in base:
                    found = _find_syntax_error(
                        osp.join(osp.dirname(path), base), seen)
                    if found is not None:
                        return found
    return None


def _syntax_error_line(path: str, err: SyntaxError) -> str:
    """One line naming the file (the config or one of its bases) and line.

    MMEngine's parser error does not name the file, so the config and its
    local bases are parsed again to find it.
    """
    found = _find_syntax_error(resolve_config_path(path)) or err
    where = found.filename if found.filename not in (None, '<unknown>') \
        else path
    line = f', line {found.lineno}' if found.lineno else ''
    return f"config file '{where}'{line} has a syntax error: {found.msg}"


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
    for backbone_cfg, where in _eac_backbone_cfgs(
            cfg.get('model', None), 'model'):
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


def setup_launcher(cfg: Config, launcher: str, local_rank: int = 0) -> None:
    """Record the launcher and prepare a distributed run.

    ``local_rank`` (``--local_rank`` of ``torch.distributed.launch``)
    becomes ``LOCAL_RANK`` unless the launcher set it (torchrun does).

    With CUDA, a process asking for a local rank beyond the visible GPUs is
    an error. Without CUDA the run goes over the ``gloo`` backend: the
    process group is initialised here (MMEngine's launchers would call
    ``torch.cuda.set_device``), DDP is built without ``device_ids`` and
    ``SyncBN`` layers become ``BN`` (SyncBatchNorm needs GPU tensors).

    Raises:
        ToolError: If more GPUs are asked for than the node has.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)
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
    """End a distributed rank once its work is done and written.

    The ranks meet at a barrier, the process group is destroyed, output is
    flushed and the process exits at once with status 0, skipping the
    interpreter's teardown. Left to that teardown, gloo's threads can
    still hold work objects that refer to Python tensors (the wrapped model
    keeps the group alive after ``destroy_process_group``), and a rank then
    aborts with ``terminate called without an active exception`` after its
    results were written: torchrun reports a failed job (seen in full test
    runs with 2 CPU processes, once without and once with
    ``destroy_process_group``). Does nothing outside a distributed run.
    """
    import logging

    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
    logging.shutdown()  # flushes and closes the log files
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# --------------------------------------------------------------------------
# Checkpoints: readable, fitting the model, crash-safe
# --------------------------------------------------------------------------
def _ensure_mmeac_import(cfg: Config) -> None:
    """Make the (dumped) config import mmeac, whose types it now names."""
    imports = cfg.get('custom_imports', None) or {}
    names = list(imports.get('imports', []) or [])
    if isinstance(imports.get('imports', None), str):
        names = [imports['imports']]
    if 'mmeac' not in names:
        cfg.custom_imports = dict(
            imports=names + ['mmeac'],
            allow_failed_imports=imports.get('allow_failed_imports', False))


def use_safe_checkpoints(cfg: Config) -> None:
    """Make the config's ``CheckpointHook`` a ``SafeCheckpointHook``.

    It takes the same arguments; checkpoint files and ``last_checkpoint``
    are written atomically and old checkpoints removed only after the new
    one is on disk. A config without a checkpoint entry gets MMEngine's
    default (every epoch) as a ``SafeCheckpointHook``; ``checkpoint=None``
    (no checkpoints) is kept.
    """
    hooks = cfg.get('default_hooks', None)
    if hooks is None:
        cfg.default_hooks = hooks = {}
    if 'checkpoint' not in hooks:
        hooks['checkpoint'] = dict(type='SafeCheckpointHook', interval=1)
    hook = hooks['checkpoint']
    if not isinstance(hook, dict):
        return
    kind = hook.get('type', None)
    name = getattr(kind, '__name__', kind)
    if name in ('CheckpointHook', 'mmengine.CheckpointHook'):
        hook['type'] = 'SafeCheckpointHook'
        _ensure_mmeac_import(cfg)


def model_shapes(cfg: Config) -> dict:
    """``name -> shape`` of the state dict of the config's model.

    The model is built on the ``meta`` device where possible (no memory, no
    pretrained weights are loaded at build time), else on the CPU.
    """
    import copy

    import torch
    from mmengine.registry import MODELS, DefaultScope
    model_cfg = copy.deepcopy(cfg.model)
    if not isinstance(model_cfg, dict):
        model_cfg = dict(model_cfg)
    if cfg.get('data_preprocessor', None) is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope(cfg.get(
            'default_scope', None)), warnings.catch_warnings():
        # building warns about deprecations the runner repeats anyway
        warnings.simplefilter('ignore')
        try:
            with torch.device('meta'):
                model = MODELS.build(copy.deepcopy(model_cfg))
        except Exception:
            model = MODELS.build(model_cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_checkpoint(cfg: Config,
                     config_path: str,
                     path: str,
                     resume: bool = False,
                     partial: bool = False) -> None:
    """Check that a checkpoint can be read and fits the config's model.

    Args:
        cfg: The merged config (mmeac imported).
        config_path: The config as the user named it (for the message).
        path: The checkpoint file.
        resume: The file is to resume training from: it must hold the
            training state, and a partial load is refused.
        partial: Load what fits (``--partial-load``): the config gets a
            ``CheckpointAdaptHook`` that drops the rest and says what it
            skipped; a file of which nothing fits is still refused.

    Raises:
        ToolError: Naming the file, the config and the first keys that do
            not fit.
    """
    if '://' in path:  # remote files are checked by MMEngine when loaded
        return
    from mmeac.engine.checkpoint import (CheckpointError, check_resumable,
                                         describe_mismatch, match_state_dict,
                                         read_checkpoint, weights_of)
    try:
        ckpt = read_checkpoint(path)
        if resume:
            check_resumable(ckpt, path)
        state = weights_of(ckpt, path)
    except CheckpointError as err:
        raise ToolError(str(err)) from None
    del ckpt
    shapes = model_shapes(cfg)
    prefixes = ('', 'backbone.') if partial and not resume else ('', )
    match = match_state_dict(shapes, state, prefixes)
    if match.exact:
        return
    head = (f"checkpoint '{path}' does not fit the model of config "
            f"'{config_path}': {describe_mismatch(match)}")
    if resume:
        raise ToolError(head)
    if not partial:
        raise ToolError(head + '; to load only the tensors that fit, pass '
                        '--partial-load')
    if not match.loaded:
        raise ToolError(f"--partial-load: no tensor of checkpoint '{path}' "
                        f"fits the model of config '{config_path}'")
    hooks = list(cfg.get('custom_hooks', None) or [])
    hooks.append(dict(type='CheckpointAdaptHook'))
    cfg.custom_hooks = hooks
    _ensure_mmeac_import(cfg)


def warn(prog: str, msg: str) -> None:
    """Print ``prog: warning: msg`` on stderr (rank 0 only)."""
    if os.environ.get('RANK', '0') == '0':
        print(
            f'{osp.basename(prog)}: warning: {msg}',
            file=sys.stderr,
            flush=True)


# --------------------------------------------------------------------------
# Data and outputs
# --------------------------------------------------------------------------
def _patch_size(cfg: Config) -> int:
    model = cfg.get('model', None) or {}
    backbone = model.get('backbone', None) if isinstance(model, dict) else None
    size = backbone.get('patch_size', 1) if isinstance(backbone, dict) else 1
    if isinstance(size, (list, tuple)):
        size = max(size)
    return int(size) if isinstance(size, int) and size > 0 else 1


def _wrap_pipelines(ds_cfg, min_size: int) -> int:
    """Wrap the pipelines of a dataset config (leaves of wrappers)."""
    count = 0
    if isinstance(ds_cfg, dict):
        pipeline = ds_cfg.get('pipeline', None)
        # a wrapper's own pipeline (e.g. MultiImageMixDataset's Mosaic)
        # looks at its transforms' types and methods: only leaves are wrapped
        wrapper = 'dataset' in ds_cfg or 'datasets' in ds_cfg
        if not wrapper and isinstance(pipeline, (list, tuple)) and not (
                len(pipeline) == 1 and isinstance(pipeline[0], dict)
                and pipeline[0].get('type', None) == 'CheckedCompose'):
            ds_cfg['pipeline'] = [
                dict(
                    type='CheckedCompose',
                    transforms=list(pipeline),
                    min_size=min_size)
            ]
            count += 1
        if 'dataset' in ds_cfg:
            count += _wrap_pipelines(ds_cfg['dataset'], min_size)
        for sub in ds_cfg.get('datasets', None) or []:
            count += _wrap_pipelines(sub, min_size)
    elif isinstance(ds_cfg, (list, tuple)):
        for sub in ds_cfg:
            count += _wrap_pipelines(sub, min_size)
    return count


def check_samples(runner, cfg: Config, loaders: List[str]) -> None:
    """Wrap the pipelines of the runner's datasets in ``CheckedCompose``.

    A sample whose annotation does not fit its image, or that the pipeline
    shrinks below one backbone patch, then stops the run with one line
    naming the file(s) (:class:`mmeac.errors.DataError`). The runner's
    not-yet-built dataloader configs are replaced by wrapped copies, so the
    config the runner dumps (and stores in checkpoints) is unchanged.

    Args:
        runner: A runner that has not built its dataloaders yet.
        cfg: The merged config (for the backbone's patch size).
        loaders: Dataloader keys, e.g. ``['train_dataloader']``.
    """
    import copy
    min_size = _patch_size(cfg)
    for key in loaders:
        loader = getattr(runner, f'_{key}', None)
        if isinstance(loader, dict):
            loader = copy.deepcopy(loader)
            _wrap_pipelines(loader.get('dataset', None), min_size)
            setattr(runner, f'_{key}', loader)


def check_writable(path: Optional[str], option: str, is_dir: bool) -> None:
    """Fail early if ``path`` cannot be written (created where missing).

    Raises:
        ToolError: ``OPTION 'PATH' cannot be written: why``.
    """
    if not path or '://' in path:
        return
    path = osp.abspath(path)
    if osp.exists(path):
        if is_dir and not osp.isdir(path):
            raise ToolError(f"{option} '{path}' is a file, not a directory")
        if not is_dir and osp.isdir(path):
            raise ToolError(f"{option} '{path}' is a directory")
        target = path if is_dir else osp.dirname(path)
        if not os.access(path, os.W_OK) or not os.access(target, os.W_OK):
            raise ToolError(f"{option} '{path}' is not writable")
        return
    parent = osp.dirname(path)
    while not osp.exists(parent):
        parent = osp.dirname(parent)
    if not osp.isdir(parent):
        raise ToolError(f"{option} '{path}' cannot be created: '{parent}' is "
                        'a file')
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ToolError(f"{option} '{path}' cannot be created: '{parent}' is "
                        'not writable')


class NewPaths:
    """Remember which output paths do not exist yet, to remove on failure.

    A tool that stops with an error removes what it created (a fresh work
    dir, a fresh ``--show-dir``), and in a work dir that existed before,
    the runner's own timestamped log dir; nothing that existed before is
    touched.
    """

    def __init__(self, *paths: Optional[str]) -> None:
        self.new = []
        for path in paths:
            if not path or '://' in path or osp.lexists(path):
                continue
            top = osp.abspath(path)  # the highest missing ancestor
            while not osp.lexists(osp.dirname(top)):
                top = osp.dirname(top)
            self.new.append(top)

    def remove(self, runner=None) -> None:
        import shutil
        if os.environ.get('RANK', '0') != '0':
            return
        for path in self.new:
            if osp.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif osp.lexists(path):
                os.remove(path)
        log_dir = getattr(runner, 'log_dir', None)
        if log_dir and osp.isdir(log_dir):
            shutil.rmtree(log_dir, ignore_errors=True)


# --------------------------------------------------------------------------
# Test outputs: visualisation and predictions (tools/test.py)
# --------------------------------------------------------------------------
#: Endings ``tools/test.py --out`` can write.
OUT_SUFFIXES = ('.pkl', '.pickle', '.json', '.yaml', '.yml')
# Keys of a data sample that are inputs / ground truth or too large to dump.
_DROP_KEYS = ('gt_sem_seg', 'gt_instances', 'gt_panoptic_seg',
              'ignored_instances', 'gt_label', 'gt_score', 'seg_logits')


def enable_visualization(cfg: Config, show_dir: str) -> None:
    """Make the scope's visualisation hook draw every test sample.

    Raises:
        ToolError: If the config has no visualisation hook or its scope is
            not one of mmseg, mmdet, mmpretrain.
    """
    hooks = cfg.get('default_hooks', None) or {}
    hook = hooks.get('visualization', None)
    if hook is None:
        raise ToolError('--show-dir needs a `visualization` entry in the '
                        "config's default_hooks")
    scope = cfg.get('default_scope', None)
    show_dir = osp.abspath(show_dir)
    if scope == 'mmseg':  # SegVisualizationHook: images go to vis backends
        hook['draw'] = True
        hook['interval'] = 1
        cfg.visualizer['save_dir'] = show_dir
    elif scope == 'mmdet':  # DetVisualizationHook: test_out_dir
        hook['draw'] = True
        hook['interval'] = 1
        hook['test_out_dir'] = show_dir
    elif scope == 'mmpretrain':  # VisualizationHook: out_dir
        hook['enable'] = True
        hook['interval'] = 1
        hook['out_dir'] = show_dir
    else:
        raise ToolError(f"--show-dir does not support default_scope '{scope}'"
                        ' (mmseg, mmdet or mmpretrain)')


def _to_cpu_plain(sample: Dict[str, Any]) -> Dict[str, Any]:
    """Copy a prediction dict without ground truth, tensors on the CPU."""
    import torch
    out: Dict[str, Any] = {}
    for key, value in sample.items():
        if key in _DROP_KEYS:
            continue
        if isinstance(value, dict):
            value = _to_cpu_plain(value)
        elif isinstance(value, torch.Tensor):
            value = value.detach().cpu()
        out[key] = value
    inst = out.get('pred_instances', None)
    if isinstance(inst, dict) and isinstance(
            inst.get('masks', None), torch.Tensor):
        import numpy as np
        from pycocotools import mask as mask_utils
        masks = inst['masks'].numpy().astype(np.uint8)
        inst['masks'] = [
            mask_utils.encode(np.asfortranarray(m)) for m in masks
        ]
    return out


def build_prediction_collector():
    """A no-op metric that gathers the predictions of all ranks.

    After evaluation, rank 0 holds them in its ``predictions`` attribute.
    """
    from mmengine.evaluator import BaseMetric

    class CollectPredictions(BaseMetric):
        default_prefix: Optional[str] = 'predictions'

        def __init__(self) -> None:
            super().__init__(collect_device='cpu')
            self.predictions: List[Dict[str, Any]] = []

        def process(self, data_batch: Any,
                    data_samples: Sequence[dict]) -> None:
            self.results.extend(_to_cpu_plain(dict(s)) for s in data_samples)

        def compute_metrics(self, results: list) -> dict:
            self.predictions = list(results)
            return {}

    return CollectPredictions()


def write_test_results(path: str, metrics: dict, collector=None) -> None:
    """Write ``{'metrics': ...}`` (and the collector's ``'predictions'``)
    to ``path`` (``.json`` / ``.yaml`` / ``.pkl``), making its folder.

    The file is dumped next to ``path`` under a temporary name and renamed
    into place, so a failed dump leaves neither half a file nor the old
    one changed."""
    import mmengine
    result: Dict[str, Any] = {'metrics': dict(metrics)}
    if collector is not None:
        result['predictions'] = collector.predictions
    # the suffix tells mmengine.dump the format
    with atomic_path(path, suffix=osp.splitext(path)[1]) as tmp:
        mmengine.dump(result, tmp)


# --------------------------------------------------------------------------
# Training options (tools/train.py)
# --------------------------------------------------------------------------
def use_amp(cfg: Config, amp: bool) -> None:
    """``--amp``: ``AmpOptimWrapper`` (bf16 where the GPU has it, no loss
    scaling needed; else fp16 with dynamic loss scaling). EAC keeps its
    residual stream in float32 either way. Without CUDA it warns and the
    run stays in fp32."""
    if not amp:
        return
    import torch
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        if torch.cuda.is_bf16_supported():
            cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
        else:
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        import logging

        from mmengine.logging import print_log
        print_log(
            '--amp needs CUDA (AmpOptimWrapper); training in fp32',
            logger='current',
            level=logging.WARNING)


def resolve_resume(cfg: Config, resume: Optional[str], prog: str) -> None:
    """Set ``cfg.resume`` / ``cfg.load_from`` from ``--resume``.

    ``'auto'`` (``--resume`` without a value, or a config with
    ``resume=True`` and no ``load_from``): the newest readable checkpoint
    of the work dir; unreadable ones are skipped with a warning, and with
    none the run starts from scratch (with a warning). A path: that file.

    Raises:
        ToolError: If the named checkpoint does not exist.
    """
    if resume is None and cfg.get('resume', False) and \
            not cfg.get('load_from', None):
        resume = 'auto'  # the config asks for MMEngine's auto-resume
    if resume == 'auto':
        from mmeac.engine.checkpoint import find_resume_checkpoint
        found, skipped = find_resume_checkpoint(cfg.work_dir)
        for msg in skipped:
            warn(prog, msg)
        if found is not None:
            cfg.resume = True
            cfg.load_from = found
        else:
            warn(
                prog, 'no checkpoint to resume from in '
                f"'{cfg.work_dir}'; training from the start")
            cfg.resume = False
    elif resume is not None:
        if not osp.isfile(resume) and '://' not in resume:
            raise ToolError(f"checkpoint '{resume}' to resume from does not "
                            'exist')
        cfg.resume = True
        cfg.load_from = resume
