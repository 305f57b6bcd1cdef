"""EAC segmentation end to end through the tools, on the built-in ADE20K data.

Test-sized versions of the UperNet and linear-probe recipes
(``configs/demo/*micro*``: 4 blocks of 32 channels, 16 cores, 64 px) train,
checkpoint, resume and test through ``tools/train.py`` / ``tools/test.py``
(on 2 gloo processes through the launchers: ``test_distributed.py``);
the frozen probe leaves every backbone weight
bit-identical; ``--cfg-options model.backbone.num_cores=K`` changes the
number of cores the backbone runs with; the budget sweep writes its JSON,
table and plot; bad input (missing dataset root, a checkpoint of another
architecture, a budget the model does not have) fails before any training
step.
"""
import importlib.util
import json
import os
import os.path as osp

import pytest
import torch
from _tool_helpers import (REPO, TOOLS, load_toolkit, log_text, python_tool,
                           run, train_iters)

from mmeac.testing import make_ade20k

UPERNET = osp.join(REPO, 'configs', 'demo',
                   'upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')
PROBE = osp.join(REPO, 'configs', 'demo',
                 'linear-probe_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')
MICRO_ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, mlp_ratio=2.0)


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    return make_ade20k(
        str(tmp_path_factory.mktemp('data')),
        size=64,
        num_train=8,
        num_val=4,
        seed=0)


def _roots(ade: str):
    return [
        f'{loader}.dataset.data_root={ade}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]


def _load(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)


def _adam_steps(ckpt: dict) -> set:
    return {int(s['step']) for s in ckpt['optimizer']['state'].values()}


def _tool_module(rel: str):
    """Import a tool script (its ``main`` runs in this process)."""
    name = 'mmeac_tool_' + rel.replace('/', '_').replace('.py', '')
    spec = importlib.util.spec_from_file_location(name, osp.join(TOOLS, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def upernet_run(ade, tmp_path_factory):
    """Train the micro UperNet 4 iterations (checkpoints at 2 and 4)."""
    base = str(tmp_path_factory.mktemp('upernet'))
    work_dir = osp.join(base, 'run_a')
    proc = run(
        python_tool('train.py', UPERNET, '--work-dir', work_dir,
                    '--cfg-options', *_roots(ade)),
        cwd=base)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(base=base, work_dir=work_dir)


def test_upernet_trains_and_checkpoints(upernet_run):
    work_dir = upernet_run['work_dir']
    text = log_text(work_dir)
    assert train_iters(text) == [1, 2, 3, 4]
    assert 'Iter(val) [4/4]' in text and 'mIoU' in text
    for name in ('iter_2.pth', 'iter_4.pth'):
        assert osp.isfile(osp.join(work_dir, name))
    ckpt = _load(osp.join(work_dir, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4
    # the head trains every step; a core chunk only in steps whose budget
    # covers it (nested dropout)
    assert max(_adam_steps(ckpt)) == 4
    state = ckpt['state_dict']
    assert state['backbone.patch_embed.proj.weight'].shape == (32, 3, 8, 8)
    assert {k
            for k in state if k.startswith('backbone.core_chunks.')
            } == {'backbone.core_chunks.0', 'backbone.core_chunks.1'}


def test_upernet_resumes(upernet_run, ade):
    run_b = osp.join(upernet_run['base'], 'run_b')
    proc = run(
        python_tool('train.py', UPERNET, '--work-dir', run_b, '--resume',
                    osp.join(upernet_run['work_dir'], 'iter_2.pth'),
                    '--cfg-options', *_roots(ade)),
        cwd=upernet_run['base'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = log_text(run_b)
    assert 'resumed' in text.lower()
    assert train_iters(text) == [3, 4]
    ckpt = _load(osp.join(run_b, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4
    assert max(_adam_steps(ckpt)) == 4  # optimizer state continued


_RUNS = []


def _test_in_process(config, ckpt, tmp_path, *extra, options=()):
    """Run tools/test.py's main here; return (runner, metrics dict)."""
    tool = _tool_module('test.py')
    toolkit = load_toolkit()  # main() imports build_runner from it
    captured = {}
    build = toolkit.build_runner

    def capture(cfg):
        captured['runner'] = build(cfg)
        return captured['runner']

    toolkit.build_runner = capture
    out = str(tmp_path / 'metrics.json')
    # the visualizer is a process-wide named instance: a fresh name per run
    # (a tool run as a command has a process of its own)
    name = f'visualizer.name=vis_{len(_RUNS)}_{osp.basename(str(tmp_path))}'
    _RUNS.append(name)
    try:
        tool.main([
            config, ckpt, '--work-dir',
            str(tmp_path / 'work'), '--out', out, *extra, '--cfg-options',
            *options, name
        ])
    finally:
        toolkit.build_runner = build
    with open(out) as f:
        return captured['runner'], json.load(f)['metrics']


@pytest.mark.parametrize('budget', [None, 8])
def test_budget_override_in_test_tool(upernet_run, ade, tmp_path, budget):
    ckpt = osp.join(upernet_run['work_dir'], 'iter_4.pth')
    options = _roots(ade)
    if budget is not None:
        options.append(f'model.backbone.num_cores={budget}')
    show = str(tmp_path / 'vis')
    runner, metrics = _test_in_process(
        UPERNET, ckpt, tmp_path, '--show-dir', show, options=options)
    # the micro model has 16 cores; the override made it run with 8
    assert runner.model.backbone.last_num_cores == (budget or 16)
    assert 0 <= metrics['mIoU'] <= 100 and 0 < metrics['aAcc'] <= 100
    images = [
        f for _, _, files in os.walk(show) for f in files if f.endswith('.png')
    ]
    assert len(images) == 4


def test_bad_budget_is_rejected(upernet_run, ade, tmp_path, capsys):
    """A budget the model cannot run is one line on stderr (exit 2), before
    the runner starts: no work dir, no checkpoint, no metrics."""
    ckpt = osp.join(upernet_run['work_dir'], 'iter_4.pth')
    with pytest.raises(SystemExit) as exc:
        _test_in_process(
            UPERNET,
            ckpt,
            tmp_path,
            options=[*_roots(ade), 'model.backbone.num_cores=12'])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    # in-process the program name is pytest's; the tool prints one line
    assert err.count('\n') == 0 and 'error: model.backbone: num_cores=12 is ' \
        'not a core budget' in err, err
    assert not osp.exists(tmp_path / 'metrics.json')
    assert not osp.exists(tmp_path / 'work')
    work_dir = str(tmp_path / 'train')
    proc = run(
        python_tool('train.py',
                    UPERNET, '--work-dir', work_dir, '--cfg-options',
                    *_roots(ade), 'model.backbone.num_cores=12'),
        cwd=str(tmp_path))
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    assert 'train.py: error: model.backbone: num_cores=12 is not a core ' \
        'budget' in proc.stderr
    assert '[8, 16]' in proc.stderr
    assert 'Iter(train)' not in proc.stdout + proc.stderr
    assert not osp.exists(work_dir)
    assert not any(
        f.endswith('.pth') for _, _, files in os.walk(tmp_path) for f in files)


def test_missing_dataset_root(tmp_path):
    missing = str(tmp_path / 'no_such_ade')
    work_dir = str(tmp_path / 'work')
    proc = run(
        python_tool('train.py', UPERNET, '--work-dir', work_dir,
                    '--cfg-options', *_roots(missing)),
        cwd=str(tmp_path))
    assert proc.returncode == 2
    assert f"dataset root '{missing}'" in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not osp.exists(work_dir)


def test_linear_probe_keeps_backbone_bit_identical(upernet_run, ade, tmp_path):
    """Probe the trained UperNet's backbone: only the head changes."""
    source = osp.join(upernet_run['work_dir'], 'iter_4.pth')
    work_dir = str(tmp_path / 'probe')
    proc = run(
        python_tool('train.py', PROBE, '--work-dir', work_dir, '--cfg-options',
                    *_roots(ade), 'model.backbone.init_cfg.type=Pretrained',
                    f'model.backbone.init_cfg.checkpoint={source}'),
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = log_text(work_dir)
    assert train_iters(text) == [1, 2, 3, 4]
    init = {
        k: v
        for k, v in _load(source)['state_dict'].items()
        if k.startswith('backbone.')
    }
    mid = _load(osp.join(work_dir, 'iter_2.pth'))['state_dict']
    final = _load(osp.join(work_dir, 'iter_4.pth'))['state_dict']
    backbone = {k: v for k, v in final.items() if k.startswith('backbone.')}
    assert set(backbone) == set(init)
    for key, value in backbone.items():
        assert torch.equal(value, init[key]), key
    # the linear head over patch ++ global (2 x 32 channels) did train
    weight = final['decode_head.conv_seg.weight']
    assert weight.shape == (150, 64, 1, 1)
    assert not torch.equal(weight, mid['decode_head.conv_seg.weight'])
    assert set(final) - set(backbone) == {
        'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'
    }

    # and the probe tests through tools/test.py at its budget (8 cores)
    runner, metrics = _test_in_process(
        PROBE, osp.join(work_dir, 'iter_4.pth'), tmp_path, options=_roots(ade))
    assert runner.model.backbone.last_num_cores == 8
    assert 0 <= metrics['mIoU'] <= 100


def test_checkpoint_of_another_arch(ade, tmp_path):
    from mmeac.models import EACViT
    other = EACViT(
        arch=dict(MICRO_ARCH, embed_dims=48), patch_size=8, max_cores=16)
    ckpt = str(tmp_path / 'other_arch.pth')
    torch.save({'state_dict': other.state_dict()}, ckpt)
    work_dir = str(tmp_path / 'probe')
    proc = run(
        python_tool('train.py', PROBE, '--work-dir', work_dir, '--cfg-options',
                    *_roots(ade), 'model.backbone.init_cfg.type=Pretrained',
                    f'model.backbone.init_cfg.checkpoint={ckpt}'),
        cwd=str(tmp_path))
    assert proc.returncode != 0
    assert 'does not fit' in proc.stderr
    assert 'patch_embed.proj.weight' in proc.stderr
    assert 'Iter(train)' not in proc.stdout + proc.stderr
    assert not any(
        f.startswith('iter_') for _, _, files in os.walk(work_dir)
        for f in files)


def test_eval_budgets_sweep(upernet_run, ade, tmp_path):
    tool = _tool_module('analysis_tools/eval_budgets.py')
    ckpt = osp.join(upernet_run['work_dir'], 'iter_4.pth')
    out_dir = str(tmp_path / 'sweep')
    tool.main([
        UPERNET, ckpt, '--out-dir', out_dir, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', *_roots(ade)
    ])
    with open(osp.join(out_dir, 'budgets.json')) as f:
        summary = json.load(f)
    assert summary['metric'] == 'mIoU'
    results = summary['results']
    assert [r['budget'] for r in results] == [8, 16]  # all budgets
    for r in results:
        assert 0 <= r['metrics']['mIoU'] <= 100
        assert r['latency_ms'] > 0 and r['timed_images'] == 3  # 4 - warmup
        assert r['peak_memory_mb'] > 0
    with open(osp.join(out_dir, 'budgets.md')) as f:
        rows = [line for line in f if line.startswith('| ')]
    assert len(rows) == 1 + len(results)
    assert rows[1].startswith('| 8 |') and rows[2].startswith('| 16 |')
    with open(osp.join(out_dir, 'budgets.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'

    # the sweep at 8 cores gives the same mIoU as tools/test.py at 8 cores
    _, metrics = _test_in_process(
        UPERNET,
        ckpt,
        tmp_path,
        options=[*_roots(ade), 'model.backbone.num_cores=8'])
    assert results[0]['metrics']['mIoU'] == pytest.approx(metrics['mIoU'])

    # a budget the model does not have: one-line error, nothing written
    bad_dir = str(tmp_path / 'bad')
    with pytest.raises(SystemExit) as exc:
        tool.main([
            UPERNET, ckpt, '--budgets', '8', '12', '--out-dir', bad_dir,
            '--work-dir',
            str(tmp_path / 'work_bad'), '--cfg-options', *_roots(ade)
        ])
    assert exc.value.code == 2
    assert not osp.exists(bad_dir)
