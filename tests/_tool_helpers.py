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

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')
#: A small ADE20K segmentation config shipped in the mmseg wheel.
SEG_CONFIG = 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'
#: Mask R-CNN from the mmdet wheel.
DET_CONFIG = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'


def tool_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for a tool subprocess: one thread, this interpreter."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
        PYTHON=sys.executable,
        PYTHONPATH=REPO +
        (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else ''))
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env.get(
        'PATH', '')
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
    module = _TOOL_MODULES.get(path)
    if module is None:
        name = 'mmeac_tool_' + osp.relpath(path, REPO).replace(
            os.sep, '_').replace('.', '_')
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOL_MODULES[path] = module
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
    return [sys.executable, osp.join(TOOLS, name), *args]


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


def newest_log_text(work_dir: str) -> str:
    """Text of the newest run log in a work dir (runs: ``<timestamp>/``)."""
    runs = sorted(
        e for e in os.listdir(work_dir)
        if osp.isfile(osp.join(work_dir, e, f'{e}.log')))
    assert runs, f'no run log in {work_dir}'
    with open(osp.join(work_dir, runs[-1], runs[-1] + '.log')) as f:
        return f.read()


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


def kill_when(cmd: Sequence[str], cwd: str, ready, timeout: float = 240):
    """Start ``cmd``; ``kill -9`` it as soon as ``ready()`` returns
    something other than None, and return that. Fails the test if the
    process ends (or ``timeout`` passes) first."""
    import signal
    import time

    import pytest
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=tool_env(),
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
            time.sleep(0.0005)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pytest.fail('the run ended before the moment to kill it came')


@contextlib.contextmanager
def fresh_mmengine_state():
    """Let MMEngine code run as in a fresh process, then restore ours.

    MMEngine keeps named global instances (loggers, message hubs, the
    visualizer named ``'visualizer'``, default scopes): a second runner in
    the same process would reuse the first one's, writing its log and
    images into the first run's directories. Inside the block every
    ``ManagerMixin`` class starts empty; afterwards the old instances come
    back, the new loggers' files are closed, and the global state a runner
    sets (RNG states, deterministic algorithms, cuDNN flags, the
    multiprocessing start method, OpenCV threads, environment variables,
    the torch thread count) is put back.
    """
    import random

    import cv2
    import torch
    import torch.multiprocessing as mp
    from mmengine.utils import ManagerMixin

    classes, todo = [], [ManagerMixin]
    while todo:
        cls = todo.pop()
        if cls not in classes:
            classes.append(cls)
            todo.extend(cls.__subclasses__())
    saved = {cls: cls.__dict__['_instance_dict'] for cls in classes}
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
    for cls in classes:
        cls._instance_dict = type(saved[cls])()
    try:
        yield
    finally:
        from mmengine.logging import MMLogger
        for logger in MMLogger._instance_dict.values():
            for handler in logger.handlers:
                handler.close()
        for cls in classes:
            cls._instance_dict = saved[cls]
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


def call_runner_tool(path: str,
                     *args: str,
                     cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    """:func:`call_tool` for a run that builds an MMEngine runner (trains,
    tests): in :func:`fresh_mmengine_state`, on one torch thread like a
    tool subprocess (:func:`tool_env`). The upstream libraries' own
    warnings, which a tool subprocess prints on its stderr, are not
    reported; mmeac's are."""
    import warnings

    import torch
    with fresh_mmengine_state(), warnings.catch_warnings():
        warnings.filterwarnings(
            'ignore',
            module=r'(mmengine|mmcv|mmseg|mmdet|mmpretrain|pycocotools)\b')
        torch.set_num_threads(1)
        return call_tool(path, *args, cwd=cwd)


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
