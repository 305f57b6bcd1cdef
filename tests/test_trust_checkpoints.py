"""Checkpoints under bad input and faults, through the real tools.

A checkpoint that does not fit the config's model, or cannot be read, stops
``tools/test.py``, ``tools/train.py`` (``--resume``, ``load_from``) and the
analysis tools with one line and writes nothing; ``--partial-load`` loads
what fits and says what it skipped. Training killed with ``kill -9``
during a checkpoint save resumes from the newest good checkpoint (killed
between saves: ``test_exact_resume.py``); an unreadable newest checkpoint
or an empty ``last_checkpoint`` is skipped with a warning.

The tools run in-process (``call_tool``, ``call_runner_tool``) where only
their logic is tested; the runs killed with ``kill -9`` are real processes.
The trained checkpoints come from the session's ``upernet_run``.
"""
import os
import os.path as osp
import sys
import time

import pytest
import torch
from _tool_helpers import REPO
from _tool_helpers import UPERNET_MICRO as UPERNET
from _tool_helpers import (call_runner_tool, call_tool, copy_work_dir,
                           data_root_options, fresh_runner_state, fresh_tool,
                           kill_when, newest_log_text, one_error_line,
                           snapshot, train_iters)

PROBE = osp.join(REPO, 'configs', 'demo',
                 'linear-probe_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')
TEST, TRAIN = 'tools/test.py', 'tools/train.py'


@pytest.fixture(scope='module')
def trained(upernet_run, tmp_path_factory):
    """A copy of the session's trained micro UperNet (iter_2.pth,
    iter_4.pth), a backbone-only file and four unreadable checkpoints."""
    base = str(tmp_path_factory.mktemp('trained'))
    work_dir = copy_work_dir(upernet_run['work_dir'], osp.join(base, 'run'))
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


@pytest.fixture(scope='module')
def opts(ade_root):
    """``--cfg-options`` for the session's data (more may follow)."""
    return ['--cfg-options', *data_root_options(ade_root)]


# ------------------------------------------------------- fitting the model
def test_test_refuses_checkpoint_of_other_model(trained, opts, tmp_path):
    """The README's promise: a wrong-shape checkpoint is an error."""
    before = snapshot(trained['base'])
    argv = [PROBE, trained['ckpt'], '--out', str(tmp_path / 'out.json')]
    proc = call_tool(TEST, *argv, *opts, cwd=str(tmp_path))
    line = one_error_line(proc, 'test.py')
    assert f"checkpoint '{trained['ckpt']}'" in line
    assert f"config '{PROBE}'" in line
    assert 'decode_head.conv_seg.weight (150x16x1x1 in the file, ' \
        '150x64x1x1 in the model)' in line
    assert '76 not in the model: neck.' in line
    assert '--partial-load' in line
    assert os.listdir(tmp_path) == []  # no work_dirs/, no out.json
    assert snapshot(trained['base']) == before


def test_partial_load_says_what_it_skipped(trained, opts, tmp_path):
    out = str(tmp_path / 'out.json')
    argv = [PROBE, trained['ckpt'], '--partial-load', '--out', out]
    argv += ['--work-dir', str(tmp_path / 'wd'), *opts]
    proc = call_runner_tool(TEST, *argv, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    # the probe has 67 tensors; all but its head's conv come from the file
    assert 'partial load: 66 of 67 model tensors loaded; skipped 1 of ' \
        'different shape: decode_head.conv_seg.weight' in text
    assert osp.isfile(out)


def test_backbone_only_file(trained, opts, tmp_path):
    """Strict: refused (the head is missing); partial: into the backbone."""
    argv = [UPERNET, trained['backbone_only'], *opts]
    proc = call_tool(TEST, *argv, cwd=str(tmp_path))
    line = one_error_line(proc, 'test.py')
    assert 'missing from the file: backbone.' in line
    assert os.listdir(tmp_path) == []

    wd = ['--work-dir', str(tmp_path / 'wd')]
    proc = call_runner_tool(
        TEST, *argv, '--partial-load', *wd, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_backbone = sum(k.startswith('backbone.') for k in trained['state'])
    n_model = len(trained['state'])
    assert (f'partial load: {n_backbone} of {n_model} model tensors loaded '
            "(file names prefixed with 'backbone.')") in proc.stdout


def test_train_load_from_must_fit(trained, opts, tmp_path):
    load_from = f"load_from={trained['backbone_only']}"
    proc = call_tool(TRAIN, UPERNET, *opts, load_from, cwd=str(tmp_path))
    line = one_error_line(proc, 'train.py')
    assert f"checkpoint '{trained['backbone_only']}' does not fit the " \
        f"model of config '{UPERNET}'" in line
    assert os.listdir(tmp_path) == []


def test_resume_needs_training_state(trained, opts, tmp_path):
    argv = [UPERNET, '--resume', trained['backbone_only'], *opts]
    proc = call_tool(TRAIN, *argv, cwd=str(tmp_path))
    line = one_error_line(proc, 'train.py')
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
def test_unreadable_checkpoint_one_line(kind, tool, trained, ade_root, opts,
                                        tmp_path):
    """Each kind of bad file, each tool that takes a checkpoint (train.py
    --resume: test_explicit_unreadable_resume_is_not_skipped)."""
    path = trained['bad'][kind]
    before = snapshot(trained['base'])
    img = osp.join(ade_root, 'images', 'validation', 'ADE_val_00000001.jpg')
    analysis = osp.join('tools', 'analysis_tools', tool)
    args = {
        'test.py': (TEST, UPERNET, path, *opts),
        'eval_budgets.py': (analysis, UPERNET, path, *opts),
        'visualize_cores.py':
        (analysis, img, UPERNET, path, '--out-dir', str(tmp_path / 'cores')),
    }[tool]
    line = one_error_line(call_tool(*args, cwd=str(tmp_path)), tool)
    assert f"'{path}'" in line and _BAD_WORDS[kind] in line, line
    assert os.listdir(tmp_path) == []
    assert snapshot(trained['base']) == before


# ------------------------------------------------- crash-safe checkpoints
def _train_args(work_dir: str, opts: list, *extra: str, resume=False):
    """train.py's command line: a checkpoint after every iteration, only
    the newest kept."""
    return (UPERNET, '--work-dir', work_dir, *(['--resume'] if resume else []),
            *opts, 'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.max_keep_ckpts=1',
            'train_cfg.val_interval=100', *extra)


def test_kill_during_checkpoint_save_then_resume(opts, tmp_path):
    """With max_keep_ckpts=1, a kill while iter_2.pth is being written
    leaves iter_1.pth (MMEngine deletes it first and writes in place)."""
    work_dir = str(tmp_path / 'run')
    # a larger head: the checkpoint takes long enough to write to catch it
    extra = ('model.decode_head.channels=128', 'train_cfg.max_iters=3')

    def saving_iter2():
        if not osp.isdir(work_dir):
            return None
        names = os.listdir(work_dir)
        if any(n.startswith('.mmeac-tmp-iter_2.pth') for n in names):
            return sorted(names)
        return None

    names = kill_when(
        fresh_tool('train.py', *_train_args(work_dir, opts, *extra)),
        str(tmp_path),
        saving_iter2,
        close=lambda: osp.isfile(osp.join(work_dir, 'iter_1.pth')))
    assert 'iter_1.pth' in names and 'iter_2.pth' not in names, names
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'iter_1.pth')
    ckpt = torch.load(
        osp.join(work_dir, 'iter_1.pth'),
        map_location='cpu',
        weights_only=False)
    assert ckpt['meta']['iter'] == 1

    proc = call_runner_tool(
        TRAIN,
        *_train_args(work_dir, opts, *extra, resume=True),
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = newest_log_text(work_dir)
    assert 'resumed epoch: 0, iter: 1' in text
    assert 'left by an interrupted checkpoint save' in text
    assert train_iters(text) == [2, 3]
    assert sorted(
        n for n in os.listdir(work_dir)
        if not osp.isdir(osp.join(work_dir, n))) == [
            'iter_3.pth', 'last_checkpoint',
            osp.basename(UPERNET)
        ]


@pytest.fixture
def two_checkpoints(upernet_work_dir):
    """A copy of the trained work dir (iter_2, iter_4; iter_4 newest)."""
    work_dir = upernet_work_dir
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'iter_4.pth')
    now = time.time()
    os.utime(osp.join(work_dir, 'iter_2.pth'), (now - 10, now - 10))
    os.utime(osp.join(work_dir, 'iter_4.pth'), (now - 5, now - 5))
    return work_dir


def _auto_resume(work_dir: str,
                 opts: list,
                 cwd: str,
                 how='--resume',
                 max_iters=5):
    """``--resume`` without a value, or ``resume=True`` in the config."""
    flag = [how] if how == '--resume' else []
    extra = [how] if how != '--resume' else []
    argv = [UPERNET, '--work-dir', work_dir, *flag, *opts, *extra]
    return call_runner_tool(
        TRAIN, *argv, f'train_cfg.max_iters={max_iters}', cwd=cwd)


def test_resume_skips_unreadable_newest(two_checkpoints, opts, tmp_path):
    work_dir = two_checkpoints
    newest = osp.join(work_dir, 'iter_4.pth')
    with open(newest, 'r+b') as f:
        f.truncate(1000)
    proc = _auto_resume(work_dir, opts, str(tmp_path), max_iters=3)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [
        ln for ln in proc.stderr.splitlines()
        if ln.startswith('train.py: warning: ')
    ]
    assert len(warnings) == 1, proc.stderr[-3000:]
    assert f"skipping checkpoint '{newest}' cannot be read" in warnings[0]
    text = newest_log_text(work_dir)
    assert 'resumed epoch: 0, iter: 2' in text
    assert train_iters(text) == [3]


@pytest.mark.parametrize('how', ['--resume', 'resume=True'])
def test_resume_with_empty_last_checkpoint(how, two_checkpoints, opts,
                                           tmp_path):
    work_dir = two_checkpoints
    pointer = osp.join(work_dir, 'last_checkpoint')
    open(pointer, 'w').close()
    proc = _auto_resume(work_dir, opts, str(tmp_path), how)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"train.py: warning: '{pointer}' is empty" in proc.stderr
    text = newest_log_text(work_dir)
    assert 'resumed epoch: 0, iter: 4' in text
    assert train_iters(text) == [5]
    with open(pointer) as f:
        assert f.read() == osp.join(work_dir, 'iter_5.pth')


def test_explicit_unreadable_resume_is_not_skipped(two_checkpoints, opts,
                                                   tmp_path):
    work_dir = two_checkpoints
    newest = osp.join(work_dir, 'iter_4.pth')
    with open(newest, 'r+b') as f:
        f.truncate(1000)
    before = snapshot(work_dir)
    argv = [UPERNET, '--work-dir', work_dir, '--resume', newest, *opts]
    proc = call_tool(TRAIN, *argv, cwd=str(tmp_path))
    line = one_error_line(proc, 'train.py')
    assert f"checkpoint '{newest}' cannot be read" in line
    assert snapshot(work_dir) == before


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
    with fresh_runner_state():  # no runner state left in this process
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
