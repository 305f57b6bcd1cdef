"""Checkpoints under bad input and faults, through the real tools.

A checkpoint that does not fit the config's model, or cannot be read, stops
``tools/test.py``, ``tools/train.py`` (``--resume``, ``load_from``) and the
analysis tools with one line and writes nothing; ``--partial-load`` loads
what fits and says what it skipped. Training killed with ``kill -9``
(during a checkpoint save, or between saves) resumes from the newest good
checkpoint; an unreadable newest checkpoint or an empty ``last_checkpoint``
is skipped with a warning.
"""
import hashlib
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from _tool_helpers import REPO, python_tool, run, tool_env, train_iters

from mmeac.testing import make_ade20k

UPERNET = osp.join(REPO, 'configs', 'demo',
                   'upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')
PROBE = osp.join(REPO, 'configs', 'demo',
                 'linear-probe_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')


def _opts(root: str, *extra: str) -> list:
    return [
        f'{loader}.dataset.data_root={root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ] + list(extra)


def _snapshot(path: str) -> dict:
    """``relative path -> sha256`` of every file under ``path``."""
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


def _one_error_line(proc, tool: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f'{tool}: error: '), lines[0]
    return lines[0]


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    return make_ade20k(
        str(tmp_path_factory.mktemp('data')),
        size=64,
        num_train=4,
        num_val=2,
        seed=0)


@pytest.fixture(scope='module')
def trained(ade, tmp_path_factory):
    """tools/train.py on the micro UperNet: iter_2.pth and iter_4.pth."""
    base = str(tmp_path_factory.mktemp('trained'))
    work_dir = osp.join(base, 'run')
    proc = run(
        python_tool('train.py', UPERNET, '--work-dir', work_dir,
                    '--cfg-options', *_opts(ade)),
        cwd=base)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = osp.join(work_dir, 'iter_4.pth')
    state = torch.load(
        ckpt, map_location='cpu', weights_only=False)['state_dict']
    backbone_only = osp.join(base, 'backbone_only.pth')
    torch.save(
        {
            'state_dict': {
                k[len('backbone.'):]: v
                for k, v in state.items() if k.startswith('backbone.')
            }
        }, backbone_only)
    bad = {}
    bad['empty'] = osp.join(base, 'empty.pth')
    open(bad['empty'], 'wb').close()
    bad['truncated'] = osp.join(base, 'truncated.pth')
    with open(ckpt, 'rb') as f, open(bad['truncated'], 'wb') as g:
        g.write(f.read()[:osp.getsize(ckpt) // 2])
    bad['text'] = osp.join(base, 'notes.pth')
    with open(bad['text'], 'w') as f:
        f.write('these are my notes, not a checkpoint\n')
    bad['list'] = osp.join(base, 'list.pth')
    torch.save([1, 2, 3], bad['list'])
    return dict(
        base=base,
        work_dir=work_dir,
        ckpt=ckpt,
        state=state,
        backbone_only=backbone_only,
        bad=bad)


# ------------------------------------------------------- fitting the model
def test_test_refuses_checkpoint_of_other_model(trained, ade, tmp_path):
    """The README's promise: a wrong-shape checkpoint is an error."""
    before = _snapshot(trained['base'])
    proc = run(
        python_tool('test.py', PROBE, trained['ckpt'], '--out',
                    str(tmp_path / 'out.json'), '--cfg-options', *_opts(ade)),
        cwd=str(tmp_path))
    line = _one_error_line(proc, 'test.py')
    assert f"checkpoint '{trained['ckpt']}'" in line
    assert f"config '{PROBE}'" in line
    assert 'decode_head.conv_seg.weight (150x16x1x1 in the file, ' \
        '150x64x1x1 in the model)' in line
    assert '76 not in the model: neck.' in line
    assert '--partial-load' in line
    assert os.listdir(tmp_path) == []  # no work_dirs/, no out.json
    assert _snapshot(trained['base']) == before


def test_partial_load_says_what_it_skipped(trained, ade, tmp_path):
    out = str(tmp_path / 'out.json')
    proc = run(
        python_tool('test.py', PROBE,
                    trained['ckpt'], '--partial-load', '--work-dir',
                    str(tmp_path / 'wd'), '--out', out, '--cfg-options',
                    *_opts(ade)),
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    # the probe has 67 tensors; all but its head's conv come from the file
    assert 'partial load: 66 of 67 model tensors loaded; skipped 1 of ' \
        'different shape: decode_head.conv_seg.weight' in text
    assert osp.isfile(out)


def test_backbone_only_file(trained, ade, tmp_path):
    """Strict: refused (the head is missing); partial: into the backbone."""
    proc = run(
        python_tool('test.py', UPERNET, trained['backbone_only'],
                    '--cfg-options', *_opts(ade)),
        cwd=str(tmp_path))
    line = _one_error_line(proc, 'test.py')
    assert 'missing from the file: backbone.' in line
    assert os.listdir(tmp_path) == []

    proc = run(
        python_tool('test.py', UPERNET,
                    trained['backbone_only'], '--partial-load', '--work-dir',
                    str(tmp_path / 'wd'), '--cfg-options', *_opts(ade)),
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_backbone = sum(k.startswith('backbone.') for k in trained['state'])
    n_model = len(trained['state'])
    assert (f'partial load: {n_backbone} of {n_model} model tensors loaded '
            "(file names prefixed with 'backbone.')") in proc.stdout


def test_train_load_from_must_fit(trained, ade, tmp_path):
    opts = _opts(ade, f"load_from={trained['backbone_only']}")
    proc = run(
        python_tool('train.py', UPERNET, '--cfg-options', *opts),
        cwd=str(tmp_path))
    line = _one_error_line(proc, 'train.py')
    assert f"checkpoint '{trained['backbone_only']}' does not fit the " \
        f"model of config '{UPERNET}'" in line
    assert os.listdir(tmp_path) == []


def test_resume_needs_training_state(trained, ade, tmp_path):
    proc = run(
        python_tool('train.py', UPERNET, '--resume', trained['backbone_only'],
                    '--cfg-options', *_opts(ade)),
        cwd=str(tmp_path))
    line = _one_error_line(proc, 'train.py')
    assert 'holds weights but no training state' in line
    assert f"load_from='{trained['backbone_only']}'" in line
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------ unreadable files
_BAD_WORDS = {
    'empty': 'is empty (0 bytes)',
    'truncated': 'cannot be read, it is cut short or not a PyTorch '
    'checkpoint',
    'text': 'cannot be read, it is cut short or not a PyTorch checkpoint',
    'list': "is not a model checkpoint: it holds a list, no 'state_dict'",
}


@pytest.mark.parametrize('kind,tool', [('empty', 'test.py'),
                                       ('truncated', 'test.py'),
                                       ('text', 'eval_budgets.py'),
                                       ('list', 'visualize_cores.py')])
def test_unreadable_checkpoint_one_line(kind, tool, trained, ade, tmp_path):
    """Each kind of bad file, each tool that takes a checkpoint (train.py
    --resume: test_explicit_unreadable_resume_is_not_skipped)."""
    path = trained['bad'][kind]
    before = _snapshot(trained['base'])
    img = osp.join(ade, 'images', 'validation', 'ADE_val_00000001.jpg')
    analysis = osp.join('analysis_tools', tool)
    cmd = {
        'test.py':
        python_tool('test.py', UPERNET, path, '--cfg-options', *_opts(ade)),
        'eval_budgets.py':
        python_tool(analysis, UPERNET, path, '--cfg-options', *_opts(ade)),
        'visualize_cores.py':
        python_tool(analysis, img, UPERNET, path, '--out-dir',
                    str(tmp_path / 'cores')),
    }[tool]
    line = _one_error_line(run(cmd, cwd=str(tmp_path)), tool)
    assert f"'{path}'" in line and _BAD_WORDS[kind] in line, line
    assert os.listdir(tmp_path) == []
    assert _snapshot(trained['base']) == before


# ------------------------------------------------- crash-safe checkpoints
def _train_cmd(work_dir: str, ade: str, *extra: str, resume=False) -> list:
    args = ['--resume'] if resume else []
    return python_tool(
        'train.py', UPERNET, '--work-dir', work_dir, *args, '--cfg-options',
        *_opts(ade, 'default_hooks.checkpoint.interval=1',
               'default_hooks.checkpoint.max_keep_ckpts=1',
               'train_cfg.max_iters=6', 'train_cfg.val_interval=100', *extra))


def _kill_when(cmd: list, cwd: str, ready, timeout: float = 240) -> list:
    """Start ``cmd``; ``kill -9`` it as soon as ``ready()``; the names in
    the work dir at that moment."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=tool_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while proc.poll() is None and time.time() < deadline:
            names = ready()
            if names is not None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return names
            time.sleep(0.0005)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pytest.fail('the run ended before the moment to kill it came')


def _resume_log(work_dir: str) -> str:
    runs = sorted(
        e for e in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, e)))
    with open(osp.join(work_dir, runs[-1], runs[-1] + '.log')) as f:
        return f.read()


def test_kill_during_checkpoint_save_then_resume(ade, tmp_path):
    """With max_keep_ckpts=1, a kill while iter_2.pth is being written
    leaves iter_1.pth (MMEngine deletes it first and writes in place)."""
    work_dir = str(tmp_path / 'run')
    # a larger head: the checkpoint takes long enough to write to catch it
    big = 'model.decode_head.channels=128'

    def saving_iter2():
        if not osp.isdir(work_dir):
            return None
        names = os.listdir(work_dir)
        if any(n.startswith('.mmeac-tmp-iter_2.pth') for n in names):
            return sorted(names)
        return None

    names = _kill_when(
        _train_cmd(work_dir, ade, big), str(tmp_path), saving_iter2)
    assert 'iter_1.pth' in names and 'iter_2.pth' not in names, names
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'iter_1.pth')
    ckpt = torch.load(
        osp.join(work_dir, 'iter_1.pth'),
        map_location='cpu',
        weights_only=False)
    assert ckpt['meta']['iter'] == 1

    proc = run(_train_cmd(work_dir, ade, big, resume=True), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = _resume_log(work_dir)
    assert 'resumed epoch: 0, iter: 1' in text
    assert 'left by an interrupted checkpoint save' in text
    assert train_iters(text) == [2, 3, 4, 5, 6]
    assert sorted(
        n for n in os.listdir(work_dir)
        if not osp.isdir(osp.join(work_dir, n))) == [
            'iter_6.pth', 'last_checkpoint',
            osp.basename(UPERNET)
        ]


def test_kill_between_saves_then_resume(ade, tmp_path):
    work_dir = str(tmp_path / 'run')

    def after_iter3():
        pointer = osp.join(work_dir, 'last_checkpoint')
        if osp.isfile(pointer) and osp.isfile(
                osp.join(work_dir, 'iter_3.pth')):
            with open(pointer) as f:
                if f.read().endswith('iter_3.pth'):
                    return sorted(os.listdir(work_dir))
        return None

    _kill_when(_train_cmd(work_dir, ade), str(tmp_path), after_iter3)
    proc = run(_train_cmd(work_dir, ade, resume=True), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = _resume_log(work_dir)
    resumed = int(text.split('resumed epoch: 0, iter: ')[1].split()[0])
    assert resumed >= 3
    assert train_iters(text) == list(range(resumed + 1, 7))
    ckpt = torch.load(
        osp.join(work_dir, 'iter_6.pth'),
        map_location='cpu',
        weights_only=False)
    assert ckpt['meta']['iter'] == 6
    # AdamW counted all 6 steps (core chunks beyond a drawn budget skip some)
    assert max(int(s['step'])
               for s in ckpt['optimizer']['state'].values()) == 6


@pytest.fixture
def two_checkpoints(trained, tmp_path):
    """A copy of the trained work dir (iter_2, iter_4; iter_4 newest)."""
    work_dir = str(tmp_path / 'run')
    shutil.copytree(trained['work_dir'], work_dir)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'iter_4.pth'))
    now = time.time()
    os.utime(osp.join(work_dir, 'iter_2.pth'), (now - 10, now - 10))
    os.utime(osp.join(work_dir, 'iter_4.pth'), (now - 5, now - 5))
    return work_dir


def _auto_resume(work_dir: str, ade: str, cwd: str, how='--resume'):
    """``--resume`` without a value, or ``resume=True`` in the config."""
    flag = [how] if how == '--resume' else []
    extra = [how] if how != '--resume' else []
    return run(
        python_tool('train.py', UPERNET, '--work-dir', work_dir, *flag,
                    '--cfg-options',
                    *_opts(ade, 'train_cfg.max_iters=5', *extra)),
        cwd=cwd)


def test_resume_skips_unreadable_newest(two_checkpoints, ade, tmp_path):
    work_dir = two_checkpoints
    newest = osp.join(work_dir, 'iter_4.pth')
    with open(newest, 'r+b') as f:
        f.truncate(1000)
    proc = _auto_resume(work_dir, ade, str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [
        ln for ln in proc.stderr.splitlines()
        if ln.startswith('train.py: warning: ')
    ]
    assert len(warnings) == 1, proc.stderr[-3000:]
    assert f"skipping checkpoint '{newest}' cannot be read" in warnings[0]
    text = _resume_log(work_dir)
    assert 'resumed epoch: 0, iter: 2' in text
    assert train_iters(text) == [3, 4, 5]


@pytest.mark.parametrize('how', ['--resume', 'resume=True'])
def test_resume_with_empty_last_checkpoint(how, two_checkpoints, ade,
                                           tmp_path):
    work_dir = two_checkpoints
    pointer = osp.join(work_dir, 'last_checkpoint')
    open(pointer, 'w').close()
    proc = _auto_resume(work_dir, ade, str(tmp_path), how)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"train.py: warning: '{pointer}' is empty" in proc.stderr
    text = _resume_log(work_dir)
    assert 'resumed epoch: 0, iter: 4' in text
    assert train_iters(text) == [5]
    with open(pointer) as f:
        assert f.read() == osp.join(work_dir, 'iter_5.pth')


def test_explicit_unreadable_resume_is_not_skipped(two_checkpoints, ade,
                                                   tmp_path):
    work_dir = two_checkpoints
    newest = osp.join(work_dir, 'iter_4.pth')
    with open(newest, 'r+b') as f:
        f.truncate(1000)
    before = _snapshot(work_dir)
    proc = run(
        python_tool('train.py', UPERNET, '--work-dir', work_dir, '--resume',
                    newest, '--cfg-options', *_opts(ade)),
        cwd=str(tmp_path))
    line = _one_error_line(proc, 'train.py')
    assert f"checkpoint '{newest}' cannot be read" in line
    assert _snapshot(work_dir) == before


def test_tools_use_safe_checkpoint_hook(trained):
    from mmengine.config import Config
    dumped = Config.fromfile(
        osp.join(trained['work_dir'], osp.basename(UPERNET)))
    assert dumped.default_hooks.checkpoint.type == 'SafeCheckpointHook'
    assert 'mmeac' in dumped.custom_imports.imports
    # the sample checks wrap the pipelines at run time, not in the config
    assert 'CheckedCompose' not in dumped.pretty_text
    ckpt = torch.load(trained['ckpt'], map_location='cpu', weights_only=False)
    assert 'CheckedCompose' not in ckpt['meta']['cfg']
    assert "type='SafeCheckpointHook'" in ckpt['meta']['cfg']
    # the checkpoints and last_checkpoint have ordinary permissions
    mode = os.stat(trained['ckpt']).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def _pth(path) -> list:
    return sorted(n for n in os.listdir(path) if n.endswith('.pth'))


def test_safe_hook_keeps_old_until_new_is_written(tmp_path):
    """The hook on its own: a failing save leaves the old checkpoint."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch.utils.data import DataLoader

    from mmeac.engine.hooks import SafeCheckpointHook

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='loss'):
            return dict(loss=self.w(inputs).pow(2).mean())

    hook = SafeCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=1)
    runner = Runner(
        model=Toy(),
        work_dir=str(tmp_path),
        train_dataloader=DataLoader(
            [torch.ones(2)] * 8,
            batch_size=2,
            collate_fn=lambda b: dict(inputs=torch.stack(b))),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=3),
        default_hooks=dict(checkpoint=hook),
        default_scope='mmengine')
    runner.train()
    assert _pth(tmp_path) == ['iter_3.pth']

    def disk_full(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    runner.save_checkpoint = disk_full
    with pytest.raises(OSError):
        hook._save_checkpoint_with_step(runner, 4, dict(epoch=0, iter=4))
    # MMEngine's hook would have removed iter_3.pth before the save
    assert _pth(tmp_path) == ['iter_3.pth']
    with open(tmp_path / 'last_checkpoint') as f:
        assert f.read() == str(tmp_path / 'iter_3.pth')
    assert torch.load(
        tmp_path / 'iter_3.pth', weights_only=False)['meta']['iter'] == 3


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-q']))
