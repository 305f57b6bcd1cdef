"""Shared helpers for the tests that run ``tools/*`` (as subprocesses or
in-process through their ``main(argv)``)."""
import contextlib
import importlib.util
import io
import os
import os.path as osp
import re
import socket
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import _warm
import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')
#: A small ADE20K segmentation config shipped in the mmseg wheel.
SEG_CONFIG = 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'
#: Mask R-CNN from the mmdet wheel.
DET_CONFIG = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'


def tool_env(extra: Optional[Dict[str, str]] = None,
             fresh: bool = False) -> Dict[str, str]:
    """Environment for a tool subprocess: one thread, this interpreter, and
    Python's stack on stderr should it crash (a SIGABRT from C++, ...).

    ``python`` (on PATH and as ``$PYTHON``, the tools' scripts use it) is the
    session's warm interpreter (:mod:`_warm`) unless ``fresh``."""
    env = dict(os.environ)
    env.update(
        PYTHONFAULTHANDLER='1',
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
        PYTHON=sys.executable,
        PYTHONPATH=REPO +
        (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else ''))
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env.get(
        'PATH', '')
    if not fresh:
        env.update(_warm.env(env))
    if extra:
        env.update(extra)
    return env


def run(cmd: Sequence[str],
        cwd: str,
        timeout: int = 300,
        env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run a command, capturing text output."""
    return subprocess.run(
        list(cmd),
        cwd=cwd,
        env=env or tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout)


_TOOL_MODULES: Dict[str, object] = {}


def load_tool(path: str):
    """A tool script imported as a module (once per process), for its
    ``main(argv)`` and helpers.

    Args:
        path (str): The tool's file, absolute or relative to the repo
            (e.g. ``'tools/analysis_tools/benchmark.py'``).
    """
    path = path if osp.isabs(path) else osp.join(REPO, path)
    module = _TOOL_MODULES.get(path)
    if module is None:
        name = 'mmeac_tool_' + osp.relpath(path, REPO).replace(
            os.sep, '_').replace('.', '_')
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOL_MODULES[path] = module
    return module


def call_tool(path: str,
              *args: str,
              cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run a tool's ``main(argv)`` in this process, like :func:`run`.

    For checks of a tool's own logic and messages (bad input, one-line
    errors), which do not need a fresh interpreter: it saves the seconds
    of importing torch and the OpenMMLab stack again. Returns a
    ``CompletedProcess`` with the exit status (``SystemExit`` and
    ``main``'s return value), stdout and stderr.

    Args:
        path (str): The tool's file, absolute or relative to the repo
            (e.g. ``'tools/test.py'``).
        *args (str): Its command line.
        cwd (str, optional): Working directory during the call.
    """
    path = path if osp.isabs(path) else osp.join(REPO, path)
    module = load_tool(path)
    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_argv = os.getcwd(), sys.argv
    sys.argv = [path, *args]  # argparse names the tool after argv[0]
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = module.main(list(args))
            except SystemExit as exc:
                code = exc.code
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit('message')
        err.write(f'{code}\n')
        code = 1
    return subprocess.CompletedProcess([path, *args], code, out.getvalue(),
                                       err.getvalue())


def load_toolkit():
    """Return :mod:`mmeac.utils.toolkit` (the tools' shared helpers)."""
    import mmeac.utils.toolkit
    return mmeac.utils.toolkit


def resolve_config_path(path: str) -> str:
    """Resolve a ``pkg::path`` config like the tools do."""
    return load_toolkit().resolve_config_path(path)


def python_tool(name: str, *args: str) -> List[str]:
    """``python tools/<name> args`` on the session's warm interpreter."""
    return [warm_python(), osp.join(TOOLS, name), *args]


def fresh_tool(name: str, *args: str) -> List[str]:
    """``python tools/<name> args`` on a fresh interpreter (this one)."""
    return [sys.executable, osp.join(TOOLS, name), *args]


def warm_python() -> str:
    """The session's warm ``python`` (:mod:`_warm`); this interpreter
    outside a test session."""
    return tool_env()['PYTHON']


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def seg_options(ade_root: str,
                max_iters: int = 4,
                norm_bn: bool = True) -> List[str]:
    """``--cfg-options`` that shrink the mmseg SegFormer-B0 config."""
    opts = [
        'model.backbone.init_cfg=None',
        'model.data_preprocessor.size=(64,64)',
        'model.decode_head.channels=32',
        # a warm-up over the whole run: the lr differs at every iteration
        'optim_wrapper.optimizer.lr=0.002',
        'param_scheduler.0.end=8',
        'param_scheduler.1.begin=8',
        'train_dataloader.batch_size=2',
        'train_dataloader.dataset.pipeline.2.scale=(128,64)',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
        f'train_cfg.max_iters={max_iters}',
        'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        'randomness.seed=0',
    ]
    if norm_bn:
        opts.append('model.decode_head.norm_cfg.type=BN')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [
            f'{loader}.num_workers=0', f'{loader}.persistent_workers=False',
            f'{loader}.dataset.data_root={ade_root}'
        ]
    for loader in ('val_dataloader', 'test_dataloader'):
        opts.append(f'{loader}.dataset.pipeline.1.scale=(96,64)')
    return opts


def log_text(work_dir: str) -> str:
    """Text of the (single) run log in a work dir."""
    logs = []
    for entry in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, entry, f'{entry}.log')
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                logs.append(f.read())
    assert len(logs) == 1, f'expected one run log in {work_dir}'
    return logs[0]


def train_iters(text: str) -> List[int]:
    return [int(m) for m in re.findall(r'Iter\(train\) \[\s*(\d+)/', text)]


def train_lrs(text: str) -> Dict[int, str]:
    return {
        int(i): lr
        for i, lr in re.findall(r'Iter\(train\) \[\s*(\d+)/\d+\].*? lr: (\S+)',
                                text)
    }


def miou_from_predictions(predictions: List[dict],
                          ade_root: str,
                          num_classes: int = 150) -> float:
    """mIoU (percent) of the dumped predictions against the ADE label maps.

    Same definition as mmseg's IoUMetric: per-class intersection and union
    summed over the dataset, IoU averaged over classes with a non-zero union.
    """
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for pred in predictions:
        name = osp.splitext(osp.basename(pred['img_path']))[0] + '.png'
        label = np.asarray(
            Image.open(osp.join(ade_root, 'annotations', 'validation', name)),
            np.int64) - 1  # reduce_zero_label: 0 -> -1 (ignored)
        seg = np.asarray(pred['pred_sem_seg']['data']).reshape(label.shape)
        valid = label >= 0
        p, g = seg[valid], label[valid]
        inter += np.bincount(p[p == g], minlength=num_classes)[:num_classes]
        area_p = np.bincount(p, minlength=num_classes)[:num_classes]
        area_g = np.bincount(g, minlength=num_classes)[:num_classes]
        union += area_p + area_g - np.bincount(
            p[p == g], minlength=num_classes)[:num_classes]
    present = union > 0
    return float(np.mean(inter[present] / union[present]) * 100)


# --------------------------------------------------------------------------
# Shared by the tests of tools under bad input and faults
# --------------------------------------------------------------------------
#: The test-sized EAC UperNet (4 iterations, checkpoints at 2 and 4).
UPERNET_MICRO = osp.join(REPO, 'configs', 'demo',
                         'upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')


def data_root_options(root: str, *extra: str) -> List[str]:
    """``--cfg-options`` pointing the three data loaders at ``root``."""
    return [
        f'{loader}.dataset.data_root={root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ] + list(extra)


def snapshot(path: str) -> Dict[str, str]:
    """``relative path -> sha256`` of every file (and every directory, as
    ``name/ -> ''``) under ``path``: compare two to prove nothing changed."""
    import hashlib
    out = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs:
            out[osp.relpath(osp.join(dirpath, name), path) + '/'] = ''
        for name in files:
            full = osp.join(dirpath, name)
            with open(full, 'rb') as f:
                out[osp.relpath(full,
                                path)] = hashlib.sha256(f.read()).hexdigest()
    return out


def one_error_line(proc: subprocess.CompletedProcess, tool: str) -> str:
    """The single stderr line ``tool: error: ...`` of a run that exited 2."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f'{tool}: error: '), lines[0]
    return lines[0]


def run_error_line(proc: subprocess.CompletedProcess, tool: str) -> str:
    """An error found while the runner runs: after the libraries' own
    warnings, the last stderr line is the error (exit 2, no traceback)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ': error: ' in ln]
    last = proc.stderr.strip().splitlines()[-1]
    assert errors == [last] and last.startswith(f'{tool}: error: '), last
    return last


def copy_work_dir(src: str, dst: str) -> str:
    """Copy a training work dir; its ``last_checkpoint`` (an absolute path)
    is made to point into the copy."""
    import shutil
    shutil.copytree(src, dst)
    pointer = osp.join(dst, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            name = osp.basename(f.read().strip())
        with open(pointer, 'w') as f:
            f.write(osp.join(dst, name))
    return dst


def kill_when(cmd: Sequence[str],
              cwd: str,
              ready,
              timeout: float = 240,
              close=None):
    """Start ``cmd`` (a fresh interpreter: :func:`fresh_tool`); ``kill -9``
    it as soon as ``ready()`` returns something other than None, and return
    that. Fails the test if the process ends (or ``timeout`` passes) first.

    ``ready()`` is polled every 20 ms; once ``close()`` (if given) is true,
    every 0.5 ms, to catch a moment that lasts milliseconds (a file being
    written) without spinning a core while the tool starts up.
    """
    import signal
    import time

    import pytest
    assert cmd[0] == sys.executable, 'kill -9 a fresh interpreter'
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=tool_env(fresh=True),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while proc.poll() is None and time.time() < deadline:
            found = ready()
            if found is not None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                assert proc.returncode == -signal.SIGKILL
                return found
            time.sleep(0.0005 if close is not None and close() else 0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pytest.fail('the run ended before the moment to kill it came')


# ------------------------------------------------------------ tiny EACViTs
#: The architecture of the authors' fixture checkpoint
#: (``../shared/fixtures/veca_tiny_official_ckpt.pt``, 32 cores).
FIXTURE_ARCH = dict(
    embed_dims=64, num_layers=3, num_heads=2, mlp_ratio=2.66667)
#: A tiny EACViT for unit tests (32 wide, 3 blocks).
TINY_ARCH = dict(embed_dims=32, num_layers=3, num_heads=2, mlp_ratio=2.0)


def fixture_eac(checkpoint, **kwargs):
    """An ``EACViT`` of the fixture's architecture that loads ``checkpoint``
    through ``init_cfg`` when its ``init_weights()`` runs."""
    from mmeac.models import EACViT
    kwargs.setdefault('arch', FIXTURE_ARCH)
    kwargs.setdefault('max_cores', 32)
    return EACViT(
        init_cfg=dict(type='Pretrained', checkpoint=str(checkpoint)), **kwargs)


def tiny_eac(**kwargs):
    """An initialised ``EACViT`` (``TINY_ARCH``, 32 cores, seed 0)."""
    import torch

    from mmeac.models import EACViT
    kwargs.setdefault('arch', TINY_ARCH)
    kwargs.setdefault('max_cores', 32)
    torch.manual_seed(0)
    model = EACViT(**kwargs)
    model.init_weights()
    return model


# --------------------------------------------------------------------------
# Runner-based tools in-process, and the plumbing the tool tests share
# --------------------------------------------------------------------------
_LAST_RUNNER_EXIT = [0.0]


def _new_second() -> None:
    """Wait until the second of the last Runner context's exit is over."""
    import time
    while int(time.time()) == int(_LAST_RUNNER_EXIT[0]):
        time.sleep(0.02)


def _manager_classes() -> list:
    """MMEngine's ``ManagerMixin`` and all its (loaded) subclasses."""
    from mmengine.utils import ManagerMixin
    found, todo = [ManagerMixin], [ManagerMixin]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


@contextlib.contextmanager
def fresh_runner_state(wait: bool = True):
    """Run MMEngine Runners in a state like that of a new process.

    A Runner names its logger, message hub, visualizer and default scope
    after its config and the current second, and the mmseg / mmdet /
    mmpretrain configs name their visualizer ``'visualizer'``: a second
    Runner in one process would get the first one's instances and write its
    log and images into the first run's files (and a second run in the same
    work dir within the same second would share its log directory). Inside
    this context every ``ManagerMixin`` registry starts empty and the clock
    has moved on to a new second since the previous such context. On exit
    what the run created is dropped (log files closed), the previous
    instances are back, and the global state a Runner sets (RNG states,
    deterministic algorithms, cuDNN flags, the multiprocessing start
    method, OpenCV threads, environment variables, the torch thread count)
    is put back.

    Args:
        wait (bool): Wait for the new second on entry. Without it, call
            :func:`_new_second` before building a Runner.
    """
    import random
    import time

    import cv2
    import torch
    import torch.multiprocessing as mp
    if wait:
        _new_second()
    state = dict(
        env=dict(os.environ),
        py_rng=random.getstate(),
        np_rng=np.random.get_state(),
        torch_rng=torch.get_rng_state(),
        deterministic=torch.are_deterministic_algorithms_enabled(),
        warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn=(torch.backends.cudnn.deterministic,
               torch.backends.cudnn.benchmark),
        mp_method=mp.get_start_method(allow_none=True),
        cv2_threads=cv2.getNumThreads(),
        threads=torch.get_num_threads())
    saved = {}
    for cls in _manager_classes():
        instances = cls.__dict__.get('_instance_dict', None)
        if instances is not None:
            saved[cls] = dict(instances)
            instances.clear()
    created = False
    try:
        yield
    finally:
        for cls in _manager_classes():
            instances = cls.__dict__.get('_instance_dict', None)
            if instances is None:
                continue
            created = created or bool(instances)
            for instance in instances.values():
                for handler in list(getattr(instance, 'handlers', [])):
                    handler.close()
                    instance.removeHandler(handler)
            instances.clear()
            instances.update(saved.get(cls, {}))
        if created:  # a Runner (or a logger) was built: its second is used
            _LAST_RUNNER_EXIT[0] = time.time()
        os.environ.clear()
        os.environ.update(state['env'])
        random.setstate(state['py_rng'])
        np.random.set_state(state['np_rng'])
        torch.set_rng_state(state['torch_rng'])
        torch.use_deterministic_algorithms(
            state['deterministic'], warn_only=state['warn_only'])
        (torch.backends.cudnn.deterministic,
         torch.backends.cudnn.benchmark) = state['cudnn']
        if mp.get_start_method(allow_none=True) != state['mp_method']:
            mp.set_start_method(state['mp_method'], force=True)
        cv2.setNumThreads(state['cv2_threads'])
        torch.set_num_threads(state['threads'])


def call_runner_tool(
        path: str,
        *args: str,
        cwd: Optional[str] = None,
        runners: Optional[list] = None) -> subprocess.CompletedProcess:
    """:func:`call_tool` for a tool that builds an MMEngine Runner.

    The call runs in :func:`fresh_runner_state` on one torch thread, like a
    tool subprocess (:func:`tool_env`), so its log, visualizer and stdout
    are its own (a tool that stops before building its Runner does not
    wait for a new second). The upstream libraries' own warnings, which a
    tool subprocess prints on its stderr, are not reported; mmeac's are.
    ``runners``, if given, receives the Runner(s) the tool built through
    ``Runner.from_cfg`` (to inspect the model after).
    """
    import warnings

    import torch
    from mmengine.runner import Runner
    original = Runner.__dict__['from_cfg']

    def from_cfg(cls, cfg):
        _new_second()
        runner = original.__func__(cls, cfg)
        if runners is not None:
            runners.append(runner)
        return runner

    Runner.from_cfg = classmethod(from_cfg)
    try:
        with fresh_runner_state(wait=False), warnings.catch_warnings():
            warnings.filterwarnings(
                'ignore',
                module=r'(mmengine|mmcv|mmseg|mmdet|mmpretrain|pycocotools)\b')
            torch.set_num_threads(1)
            return call_tool(path, *args, cwd=cwd)
    finally:
        Runner.from_cfg = original


def tool_ok(cwd: str,
            script: str,
            *args: str,
            runners: Optional[list] = None) -> subprocess.CompletedProcess:
    """Run ``tools/<script> args`` in-process (:func:`call_runner_tool`) in
    ``cwd`` and assert that it succeeded."""
    proc = call_runner_tool(
        osp.join(TOOLS, script), *args, cwd=cwd, runners=runners)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def command_ok(cwd: str, script: str, *args: str) -> None:
    """Run ``python tools/<script> args`` as a command in ``cwd`` and assert
    that it succeeded: the CLI smoke tests (a process of its own on the warm
    interpreter, its argument parsing and ``__main__``, the config's
    ``custom_imports``, the exit status)."""
    proc = run(python_tool(script, *args), cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]


def tool_error(cwd: str, script: str, *args: str) -> str:
    """Run ``tools/<script> args`` in-process on bad input; assert that it
    failed with exit status 2, one ``<script>: error:`` line on stderr and
    no traceback or training step, and return that line."""
    proc = call_runner_tool(osp.join(TOOLS, script), *args, cwd=cwd)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f'{osp.basename(script)}: error: '), lines
    assert 'Iter(train)' not in proc.stdout + proc.stderr
    return lines[0]


def make_data(factory, make, **kwargs):
    """Built-in data (seed 0) for one test module: ``make`` (a
    :mod:`mmeac.testing` generator) under a new temp dir's ``data/``.

    Returns:
        tuple: The temp dir and the dataset root ``make`` returned.
    """
    base = str(factory.mktemp('data'))
    return base, make(osp.join(base, 'data'), seed=0, **kwargs)


def newest_log_text(work_dir: str) -> str:
    """Text of the newest run log in a work dir (one per run)."""
    runs = sorted(
        e for e in os.listdir(work_dir)
        if osp.isfile(osp.join(work_dir, e, f'{e}.log')))
    assert runs, f'no run log in {work_dir}'
    with open(
            osp.join(work_dir, runs[-1], f'{runs[-1]}.log'),
            encoding='utf-8') as f:
        return f.read()


def load_ckpt(path: str) -> dict:
    import torch
    return torch.load(path, map_location='cpu', weights_only=False)


def adam_steps(ckpt: dict) -> set:
    """The step counts in a checkpoint's (Adam-type) optimizer state."""
    return {int(s['step']) for s in ckpt['optimizer']['state'].values()}


def train_then_resume(config: str, cwd: str, *options: str) -> dict:
    """Train ``config`` 2 iterations with ``tools/train.py`` as a command
    (the CLI smoke test), then resume it to the config's 4 in-process
    (``--resume`` without a value: the latest checkpoint)."""
    work_dir = osp.join(cwd, 'run')
    command_ok(cwd, 'train.py', config, '--work-dir', work_dir,
               '--cfg-options', 'train_cfg.max_iters=2', *options)
    text_a = log_text(work_dir)
    tool_ok(cwd, 'train.py', config, '--work-dir', work_dir, '--resume',
            *(['--cfg-options', *options] if options else []))
    return dict(
        work_dir=work_dir, text_a=text_a, text_b=newest_log_text(work_dir))


def check_resumed(run_: dict):
    """Assert that :func:`train_then_resume` ran iterations 1-2, then 3-4
    from the checkpoint of iteration 2; return both checkpoints."""
    assert train_iters(run_['text_a']) == [1, 2]
    assert 'resumed epoch: 0, iter: 2' in run_['text_b']
    assert train_iters(run_['text_b']) == [3, 4]
    ck2 = load_ckpt(osp.join(run_['work_dir'], 'iter_2.pth'))
    ck4 = load_ckpt(osp.join(run_['work_dir'], 'iter_4.pth'))
    assert ck4['meta']['iter'] == 4
    return ck2, ck4


_CONFIGS: Dict[str, object] = {}


def load_cfg(path: str, options: Optional[dict] = None):
    """A fresh copy of a config file's ``Config``, with ``options`` merged.

    Each file is parsed once per process (``pkg::`` inheritance makes that
    about half a second), and every call gets its own deep copy.
    """
    import copy

    from mmengine.config import Config
    if path not in _CONFIGS:
        _CONFIGS[path] = Config.fromfile(path)
    cfg = copy.deepcopy(_CONFIGS[path])
    if options:
        cfg.merge_from_dict(options)
    return cfg


def plain(value):
    """A config value as plain data, without the ``_scope_`` keys that
    inheriting a ``pkg::`` config adds."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def build_model(cfg, meta: bool = False):
    """Build the model as the Runner does (in the config's scope, with a
    top-level ``data_preprocessor`` if the model has none).

    Args:
        meta (bool): Build it on the ``meta`` device, for checks of
            structure, settings and shapes where the numbers are not the
            point (no memory, no initialisation cost).
    """
    import torch
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.default_scope)
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor', None) is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    if not meta:
        return MODELS.build(model_cfg)
    with torch.device('meta'):  # (a few tensors are made on the CPU)
        return MODELS.build(model_cfg).to('meta')


def predict(model, steps: list, inputs: dict):
    """Run one sample through pipeline ``steps`` and ``model.test_step``."""
    import torch
    from mmengine.dataset import Compose, pseudo_collate
    data = Compose(steps)(inputs)
    model.eval()
    with torch.no_grad():
        return model.test_step(pseudo_collate([data]))[0], data


def config_file(folder: str, name: str) -> str:
    """Path of ``configs/<folder>/<name>`` in this checkout."""
    return osp.join(REPO, 'configs', folder, name)


def load_mmeac_cfg(path: str, scope: str):
    """Load a config of this repo; assert that it builds under ``scope``
    (its ``default_scope``) and imports mmeac (``custom_imports``)."""
    cfg = load_cfg(path)
    assert cfg.default_scope == scope
    assert cfg.custom_imports == dict(
        imports=['mmeac'], allow_failed_imports=False)
    return cfg
