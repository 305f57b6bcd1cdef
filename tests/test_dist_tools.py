"""``tools/dist_train.sh`` / ``tools/dist_test.sh``: 2 CPU processes (gloo).

The mmseg SegFormer-B0 config keeps its ``SyncBN`` decode head here: without
CUDA the tools turn it into ``BN`` and use the gloo backend by themselves.
"""
import os
import os.path as osp
import pickle

import pytest
from _tool_helpers import (SEG_CONFIG, TOOLS, free_port, log_text,
                           miou_from_predictions, run, seg_options, tool_env,
                           train_iters)

from mmeac.testing import make_ade20k


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    return make_ade20k(
        str(tmp_path_factory.mktemp('data')),
        size=128,
        num_train=8,
        num_val=4,
        seed=0)


def _dist(script: str, *args: str, cwd: str, timeout: int = 400):
    env = tool_env({'PORT': str(free_port())})
    return run(['bash', osp.join(TOOLS, script), *args],
               cwd=cwd,
               env=env,
               timeout=timeout)


def test_dist_train_and_test_on_two_cpu_processes(ade, tmp_path):
    work_dir = str(tmp_path / 'dist')
    opts = seg_options(ade, norm_bn=False)
    proc = _dist(
        'dist_train.sh',
        SEG_CONFIG,
        '2',
        '--work-dir',
        work_dir,
        '--cfg-options',
        *opts,
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = log_text(work_dir)
    assert 'Distributed training: True' in text
    assert 'GPU number: 2' in text  # MMEngine's name for the world size
    assert "backend='gloo'" in text
    assert train_iters(text) == [1, 2, 3, 4]
    # 4 validation images over 2 ranks: each rank ran 2 iterations
    assert 'Iter(val) [2/2]' in text and 'Iter(val) [4/4]' not in text
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))

    out = str(tmp_path / 'dist_results.pkl')
    proc = _dist(
        'dist_test.sh',
        SEG_CONFIG,
        osp.join(work_dir, 'iter_4.pth'),
        '2',
        '--work-dir',
        str(tmp_path / 'dist_test'),
        '--out',
        out,
        '--cfg-options',
        *opts,
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = log_text(str(tmp_path / 'dist_test'))
    assert 'Iter(test) [2/2]' in text and 'Iter(test) [4/4]' not in text
    with open(out, 'rb') as f:
        result = pickle.load(f)
    # the predictions of both ranks were gathered: all 4 images, once each
    paths = sorted(osp.basename(p['img_path']) for p in result['predictions'])
    assert paths == sorted(os.listdir(osp.join(ade, 'images', 'validation')))
    miou = float(result['metrics']['mIoU'])
    expected = miou_from_predictions(result['predictions'], ade)
    assert abs(miou - expected) < 0.01, (miou, expected)


@pytest.mark.parametrize('script,args,message', [
    ('dist_train.sh', ['no/such.py', '2'
                       ], "config file 'no/such.py' does not exist"),
    ('dist_train.sh', ['CONFIG', '0'], "GPUS must be a positive integer"),
    ('dist_train.sh', ['CONFIG', 'two'], "GPUS must be a positive integer"),
    ('dist_test.sh', ['CONFIG', 'no/such.pth', '2'
                      ], "checkpoint 'no/such.pth' does not exist"),
    ('dist_train.sh', ['CONFIG'], 'usage: dist_train.sh CONFIG GPUS'),
])
def test_dist_scripts_bad_input(script, args, message, tmp_path):
    config = tmp_path / 'cfg.py'
    config.write_text('x = 1\n')
    args = [str(config) if a == 'CONFIG' else a for a in args]
    proc = _dist(script, *args, cwd=str(tmp_path), timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert sorted(os.listdir(tmp_path)) == ['cfg.py']


def test_scripts_are_executable():
    for name in ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
                 'slurm_test.sh'):
        assert os.access(osp.join(TOOLS, name), os.X_OK), name


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_slurm_scripts_call_srun(script, tmp_path):
    """The slurm scripts hand the right command to ``srun`` (a fake here)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    fake = bin_dir / 'srun'
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    config = tmp_path / 'cfg.py'
    config.write_text('x = 1\n')
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    fourth = str(tmp_path / 'wd') if script == 'slurm_train.sh' else str(ckpt)
    env = tool_env({
        'GPUS': '16',
        'GPUS_PER_NODE': '8',
        'CPUS_PER_TASK': '3',
        'SRUN_ARGS': '--quotatype=auto'
    })
    env['PATH'] = f'{bin_dir}{os.pathsep}{env["PATH"]}'
    proc = run([
        'bash',
        osp.join(TOOLS, script), 'part', 'job',
        str(config), fourth, '--cfg-options', 'a=1'
    ],
               cwd=str(tmp_path),
               env=env,
               timeout=60)
    assert proc.returncode == 0, proc.stderr
    argv = proc.stdout.splitlines()
    assert argv[:9] == [
        '-p', 'part', '--job-name=job', '--gres=gpu:8', '--ntasks=16',
        '--ntasks-per-node=8', '--cpus-per-task=3', '--kill-on-bad-exit=1',
        '--quotatype=auto'
    ]
    tool = 'train.py' if script == 'slurm_train.sh' else 'test.py'
    rest = argv[9:]
    assert rest[:3] == [env['PYTHON'], '-u', osp.join(TOOLS, tool)]
    assert rest[3] == str(config)
    if tool == 'train.py':
        assert rest[4:] == [
            f'--work-dir={fourth}', '--launcher=slurm', '--cfg-options', 'a=1'
        ]
    else:
        assert rest[4:] == [
            str(ckpt), '--launcher=slurm', '--cfg-options', 'a=1'
        ]
