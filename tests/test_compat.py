"""Tests of :mod:`mmeac.compat`: the fixes the OpenMMLab stack needs on
current torch.

Each fix has a test that shows the upstream breakage in a fresh interpreter
that does not import mmeac (so the test fails, and the fix can go, once
upstream is fixed) and tests that the stack works with the fix.
"""
import os.path as osp
import pickle
import subprocess
import sys
import textwrap
from collections import Counter
from importlib import metadata

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from torch.utils.data import Dataset

import mmeac  # noqa: F401  (applies the fixes)
from mmeac import compat


class _TinyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.fc(inputs).squeeze(1)
        if mode == 'loss':
            return dict(loss=((out - labels)**2).mean())
        return out


class _TinyDataset(Dataset):

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i):
        return dict(
            inputs=torch.tensor([i / 8.0, 1.0]),
            labels=torch.tensor(0.5 * i / 8.0 - 0.25))


class _CaptureAtStart(Hook):
    """Record the runner state at ``before_train`` (after resume / load)."""

    def before_train(self, runner) -> None:
        optimizer = runner.optim_wrapper.optimizer
        self.iter = runner.iter
        self.params = {
            k: v.detach().clone()
            for k, v in runner.model.state_dict().items()
        }
        self.momentum = [
            optimizer.state[p]['momentum_buffer'].clone()
            for group in optimizer.param_groups for p in group['params']
            if 'momentum_buffer' in optimizer.state[p]
        ]
        self.scheduler_last_step = runner.param_schedulers[0].last_step
        self.loss_history = len(
            runner.message_hub.get_scalar('train/loss').data[0]) if (
                'train/loss' in runner.message_hub.log_scalars) else 0


def _make_runner(work_dir: str, name: str, max_iters: int, hooks=(), **kwargs):
    return Runner(
        model=_TinyModel(),
        work_dir=work_dir,
        experiment_name=name,
        train_dataloader=dict(
            dataset=_TinyDataset(),
            batch_size=2,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        # MultiStepLR keeps its milestones in a collections.Counter
        param_scheduler=[
            dict(type='MultiStepLR', milestones=[5], by_epoch=False)
        ],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=list(hooks),
        randomness=dict(seed=0),
        **kwargs)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A run of 4 iterations that saved iter_2.pth and iter_4.pth."""
    work_dir = str(tmp_path_factory.mktemp('compat_run'))
    runner = _make_runner(work_dir, 'compat_first', max_iters=4)
    runner.train()
    optimizer = runner.optim_wrapper.optimizer
    momentum = [
        optimizer.state[p]['momentum_buffer'].clone()
        for group in optimizer.param_groups for p in group['params']
    ]
    params = {
        k: v.detach().clone()
        for k, v in runner.model.state_dict().items()
    }
    return dict(
        work_dir=work_dir,
        ckpt=osp.join(work_dir, 'iter_4.pth'),
        params=params,
        momentum=momentum,
        loss_history=len(runner.message_hub.get_scalar('train/loss').data[0]))


def _run_without_mmeac(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that never imports mmeac."""
    code = 'import sys\nassert "mmeac" not in sys.modules\n' + textwrap.dedent(
        code) + '\nassert "mmeac" not in sys.modules\n'
    return subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=300)


# ---------------------------------------------------- weights-only loading
def test_checkpoint_holds_more_than_weights(trained):
    """The checkpoint needs the globals the fix allowlists."""
    needed = set(
        torch.serialization.get_unsafe_globals_in_checkpoint(trained['ckpt']))
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in needed
    assert 'builtins.getattr' in needed
    assert any(n.endswith('multiarray.scalar') for n in needed)
    allowed = {
        g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
        for g in compat.mmengine_safe_globals()
    }
    assert needed <= allowed, needed - allowed


def test_upstream_mmengine_checkpoint_fails_weights_only(trained):
    """Without mmeac, mmengine 0.10.7 cannot read its own checkpoint on
    torch>=2.6.

    If this test fails, upstream has fixed the breakage and
    ``compat._patch_checkpoint_loader`` can be removed.
    """
    proc = _run_without_mmeac(f"""
        from mmengine.runner.checkpoint import _load_checkpoint
        _load_checkpoint({trained['ckpt']!r}, map_location='cpu')
        """)
    assert proc.returncode != 0
    assert 'Weights only load failed' in proc.stderr, proc.stderr[-2000:]


def test_resume_continues_iterations_and_optimizer_state(trained):
    capture = _CaptureAtStart()
    runner = _make_runner(
        trained['work_dir'],
        'compat_resume',
        max_iters=6,
        hooks=[capture],
        resume=True)  # finds iter_4.pth through work_dir/last_checkpoint
    runner.train()

    assert capture.iter == 4
    saved = _load_checkpoint(trained['ckpt'], map_location='cpu')
    assert saved['param_schedulers'][0]['last_step'] > 0
    assert capture.scheduler_last_step == saved['param_schedulers'][0][
        'last_step']
    # the message hub's HistoryBuffers came back from the checkpoint
    assert capture.loss_history == trained['loss_history'] == 4
    for key, value in trained['params'].items():
        torch.testing.assert_close(capture.params[key], value)
    assert len(capture.momentum) == len(trained['momentum']) == 2
    for got, want in zip(capture.momentum, trained['momentum']):
        assert want.abs().sum() > 0
        torch.testing.assert_close(got, want)
    assert runner.iter == 6
    assert osp.isfile(osp.join(trained['work_dir'], 'iter_6.pth'))


def test_load_from_loads_weights_only(trained, tmp_path):
    capture = _CaptureAtStart()
    runner = _make_runner(
        str(tmp_path),
        'compat_load_from',
        max_iters=1,
        hooks=[capture],
        load_from=trained['ckpt'])
    runner.train()

    assert capture.iter == 0
    assert capture.momentum == []  # optimizer state is not taken over
    for key, value in trained['params'].items():
        torch.testing.assert_close(capture.params[key], value)
    assert runner.iter == 1


def test_load_checkpoint_function(trained):
    ckpt = _load_checkpoint(trained['ckpt'], map_location='cpu')
    assert ckpt['meta']['iter'] == 4
    assert isinstance(ckpt['message_hub']['runtime_info']['eta'], np.floating)
    assert ckpt['param_schedulers'][0]['milestones'] == Counter({5: 1})


class _NotAllowed:
    """A class no allowlist names."""

    def __init__(self, value: int) -> None:
        self.value = value


def test_plain_torch_load_still_weights_only(trained, tmp_path):
    """The fix does not open weights-only loading for other files."""
    path = str(tmp_path / 'other.pth')
    torch.save({'obj': _NotAllowed(3)}, path)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load'):
        torch.load(path)
    # the allowlist is only active while mmengine loads a checkpoint
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(trained['ckpt'])
    before = set(torch.serialization.get_safe_globals())
    _load_checkpoint(trained['ckpt'], map_location='cpu')
    assert set(torch.serialization.get_safe_globals()) == before


def test_mmengine_loader_refuses_other_globals(tmp_path):
    """Through mmengine's loader, only the allowlist is accepted."""
    from mmengine.logging import HistoryBuffer

    path = str(tmp_path / 'evil.pth')
    torch.save({'meta': {}, 'obj': _NotAllowed(3)}, path)
    with pytest.raises(pickle.UnpicklingError, match='_NotAllowed'):
        _load_checkpoint(path, map_location='cpu')

    # getattr is only resolved for HistoryBuffer's statistics methods
    path = str(tmp_path / 'getattr.pth')
    torch.save({'f': HistoryBuffer.update}, path)
    with pytest.raises(pickle.UnpicklingError, match="'update'"):
        _load_checkpoint(path, map_location='cpu')
    torch.save({'f': HistoryBuffer.mean}, path)
    assert _load_checkpoint(path)['f'] is HistoryBuffer.mean


def test_checkpoint_from_numpy_1_loads(tmp_path):
    """numpy 1.x pickles name ``numpy.core.multiarray``, numpy 2.x
    ``numpy._core``."""
    path = str(tmp_path / 'np.pth')
    torch.save({
        'a': np.arange(3, dtype=np.int64),
        'x': np.float64(1.5)
    },
               path,
               _use_new_zipfile_serialization=False)
    with open(path, 'rb') as f:
        data = f.read()
    old = data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    if old == data:  # written by numpy 1.x already: go the other way
        old = data.replace(b'numpy.core.multiarray', b'numpy._core.multiarray')
    assert old != data
    with open(path, 'wb') as f:
        f.write(old)
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert ckpt['a'].tolist() == [0, 1, 2]
    assert ckpt['x'] == 1.5 and isinstance(ckpt['x'], np.float64)


def test_config_dict_in_checkpoint(tmp_path):
    from mmengine.config import ConfigDict

    path = str(tmp_path / 'cfg.pth')
    torch.save({'meta': {'cfg': ConfigDict(a=1, b=dict(c=[2, 3]))}}, path)
    cfg = _load_checkpoint(path)['meta']['cfg']
    assert isinstance(cfg, ConfigDict) and cfg.b.c == [2, 3]


def test_apply_all_is_idempotent():
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmengine.utils import package_utils

    compat.apply_all()
    compat.apply_all()
    func = CheckpointLoader.__dict__['load_checkpoint'].__func__
    assert getattr(func, compat._PATCHED_FLAG)
    # wrapped exactly once: the wrapped function is mmengine's own
    assert not hasattr(func.__wrapped__, compat._PATCHED_FLAG)
    assert func.__wrapped__.__module__ == 'mmengine.runner.checkpoint'
    assert package_utils.get_installed_path is compat.get_installed_path
    assert compat._patch_checkpoint_loader() is False
    assert compat._patch_package_utils() is False


# ------------------------------------------------------------ package lookup
_BASE_CONFIG = "_base_ = ['mmseg::_base_/default_runtime.py']\n"


def _pkg_resources_missing() -> bool:
    proc = subprocess.run([sys.executable, '-c', 'import pkg_resources'],
                          capture_output=True)
    return proc.returncode != 0


@pytest.mark.skipif(
    not _pkg_resources_missing(),
    reason='this environment still has pkg_resources (setuptools < 81)')
def test_upstream_package_config_needs_pkg_resources(tmp_path):
    """Without mmeac, ``mmseg::`` base configs fail once setuptools drops
    pkg_resources.

    If this test fails, upstream mmengine no longer needs pkg_resources and
    ``compat._patch_package_utils`` can be removed.
    """
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(_BASE_CONFIG)
    proc = _run_without_mmeac(f"""
        from mmengine.config import Config
        Config.fromfile({str(cfg)!r})
        """)
    assert proc.returncode != 0
    assert "No module named 'pkg_resources'" in proc.stderr, proc.stderr[
        -2000:]


def test_package_config_resolves(tmp_path):
    from mmengine.config import Config
    from mmengine.hub import get_config

    cfg = tmp_path / 'cfg.py'
    cfg.write_text(_BASE_CONFIG)
    config = Config.fromfile(str(cfg))
    assert config.default_scope == 'mmseg'

    config = get_config('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    assert config.model.type == 'MaskRCNN'


def test_installed_path_lookup():
    import mmseg

    mmseg_dir = osp.dirname(mmseg.__file__)
    assert compat.get_installed_path('mmsegmentation') == mmseg_dir
    assert compat.get_installed_path('mmseg') == mmseg_dir
    # mmeac is an editable install: its path is the checkout
    assert compat.get_installed_path('mmeac') == osp.dirname(mmeac.__file__)
    assert compat.package2module('mmsegmentation') == 'mmseg'
    assert compat.is_installed('mmdet')
    assert not compat.is_installed('mmeac_no_such_package')
    with pytest.raises(metadata.PackageNotFoundError):
        compat.get_installed_path('mmeac_no_such_package')
