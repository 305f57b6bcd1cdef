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
