"""Exact resume through the real tools: train N iterations == train k,
kill -9, resume, train to N (bit-identical weights on the CPU)."""
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from _tool_helpers import REPO, TOOLS, tool_env

CONFIG = osp.join(REPO, 'configs', 'demo',
                  'upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')
N = 8
OPTIONS = [
    '--cfg-options', f'train_cfg.max_iters={N}', f'train_cfg.val_interval={N}',
    f'param_scheduler.1.end={N}', 'randomness.seed=0',
    'randomness.deterministic=True', 'default_hooks.checkpoint.interval=2',
    'default_hooks.checkpoint.max_keep_ckpts=10'
]


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('resume')
    cmd = [
        sys.executable,
        osp.join(TOOLS, 'misc', 'make_builtin_data.py'), 'ade20k', '--out',
        osp.join('data', 'demo'), '--size', '64', '--num-train', '6',
        '--num-val', '2'
    ]
    proc = subprocess.run(
        cmd,
        cwd=root,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr
    return root


def _train_cmd(work_dir, *extra):
    return [
        sys.executable,
        osp.join(TOOLS, 'train.py'), CONFIG, '--work-dir',
        str(work_dir), *extra, *OPTIONS
    ]


def _weights(path):
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    return ckpt['state_dict'], ckpt


def test_kill_and_resume_is_bit_identical(data_dir):
    env = tool_env()
    full = data_dir / 'full'
    proc = subprocess.run(
        _train_cmd(full),
        cwd=data_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    cut = data_dir / 'cut'
    victim = subprocess.Popen(
        _train_cmd(cut),
        cwd=data_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    first = cut / 'iter_2.pth'
    deadline = time.time() + 600
    while not (first.exists() and (cut / 'last_checkpoint').exists()):
        assert victim.poll() is None, 'training ended before iteration 2'
        assert time.time() < deadline
        time.sleep(0.01)
    time.sleep(0.2)  # let torch.save finish the file it is writing
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert not (cut / f'iter_{N}.pth').exists(), 'the run was not cut short'

    resumed = subprocess.run(
        _train_cmd(cut, '--resume', str(first)),
        cwd=data_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    ref, ref_ckpt = _weights(full / f'iter_{N}.pth')
    got, got_ckpt = _weights(cut / f'iter_{N}.pth')
    assert ref.keys() == got.keys()
    differ = [k for k in ref if not torch.equal(ref[k], got[k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:4]}'
    # the random streams themselves continued identically
    a, b = ref_ckpt['eac_rng_state'], got_ckpt['eac_rng_state']
    assert a['backbones'].keys() == {'backbone'}
    sa, sb = a['backbones']['backbone'], b['backbones']['backbone']
    assert sa['aug_count'] == sb['aug_count'] == N
    assert torch.equal(sa['budget'], sb['budget'])
    assert torch.equal(a['torch'], b['torch'])
    # the backbone's state dict carries no RNG key (authors' files load
    # strictly)
    assert not any('rng' in k for k in ref)


def test_resume_without_rng_state_diverges_and_warns(data_dir):
    """The control: a checkpoint stripped of the RNG state resumes with a
    warning and, since budgets and augmentation are drawn afresh, ends
    elsewhere; so the test above can fail."""
    env = tool_env()
    full = data_dir / 'full'
    if not (full / f'iter_{N}.pth').exists():
        pytest.skip('needs test_kill_and_resume_is_bit_identical first')
    ckpt = torch.load(
        full / 'iter_2.pth', map_location='cpu', weights_only=False)
    del ckpt['eac_rng_state']
    stripped_dir = data_dir / 'stripped'
    stripped_dir.mkdir()
    torch.save(ckpt, stripped_dir / 'start.pth')
    proc = subprocess.run(
        _train_cmd(stripped_dir, '--resume', str(stripped_dir / 'start.pth')),
        cwd=data_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'holds no RNG state' in proc.stdout + proc.stderr
    ref, _ = _weights(full / f'iter_{N}.pth')
    got, _ = _weights(stripped_dir / f'iter_{N}.pth')
    assert any(not torch.equal(ref[k], got[k]) for k in ref)


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-q']))
