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
import json
import os
import os.path as osp

import pytest
import torch
from _tool_helpers import (TOOLS, adam_steps, call_runner_tool, config_file,
                           load_ckpt, log_text, make_data, snapshot,
                           tool_error, tool_ok, train_iters)

from mmeac.testing import make_ade20k

UPERNET = config_file('demo',
                      'upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')
PROBE = config_file('demo',
                    'linear-probe_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')
MICRO_ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, mlp_ratio=2.0)


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    return make_data(
        tmp_path_factory, make_ade20k, size=64, num_train=8, num_val=4)[1]


def _roots(ade: str):
    return [
        f'{loader}.dataset.data_root={ade}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]


def test_upernet_trains_and_checkpoints(upernet_run):
    work_dir = upernet_run['work_dir']
    text = log_text(work_dir)
    assert train_iters(text) == [1, 2, 3, 4]
    assert 'Iter(val) [2/2]' in text and 'mIoU' in text
    for name in ('iter_2.pth', 'iter_4.pth'):
        assert osp.isfile(osp.join(work_dir, name))
    ckpt = load_ckpt(osp.join(work_dir, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4
    # the head trains every step; a core chunk only in steps whose budget
    # covers it (nested dropout)
    assert max(adam_steps(ckpt)) == 4
    state = ckpt['state_dict']
    assert state['backbone.patch_embed.proj.weight'].shape == (32, 3, 8, 8)
    assert {k
            for k in state if k.startswith('backbone.core_chunks.')
            } == {'backbone.core_chunks.0', 'backbone.core_chunks.1'}


def test_upernet_resumes(upernet_run, tmp_path):
    run_b = str(tmp_path / 'run_b')
    tool_ok(
        str(tmp_path), 'train.py', UPERNET, '--work-dir', run_b, '--resume',
        osp.join(upernet_run['work_dir'], 'iter_2.pth'), '--cfg-options',
        *upernet_run['options'])
    text = log_text(run_b)
    assert 'resumed' in text.lower()
    assert train_iters(text) == [3, 4]
    ckpt = load_ckpt(osp.join(run_b, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4
    assert max(adam_steps(ckpt)) == 4  # optimizer state continued


def _test_in_process(config, ckpt, tmp_path, *extra, options=()):
    """Run tools/test.py's main here; return (runner, metrics dict)."""
    runners = []
    out = str(tmp_path / 'metrics.json')
    tool_ok(
        str(tmp_path),
        'test.py',
        config,
        ckpt,
        '--work-dir',
        str(tmp_path / 'work'),
        '--out',
        out,
        *extra,
        '--cfg-options',
        *options,
        runners=runners)
    with open(out) as f:
        return runners[-1], json.load(f)['metrics']


@pytest.fixture(scope='module')
def budget_tests(upernet_run, ade, tmp_path_factory):
    """tools/test.py on the trained UperNet with --show-dir, at its own
    budget (16 cores) and with ``model.backbone.num_cores=8``."""
    results = {}
    for budget in (None, 8):
        tmp = tmp_path_factory.mktemp(f'test_{budget}')
        options = _roots(ade)
        if budget is not None:
            options.append(f'model.backbone.num_cores={budget}')
        show = str(tmp / 'vis')
        runner, metrics = _test_in_process(
            UPERNET,
            osp.join(upernet_run['work_dir'], 'iter_4.pth'),
            tmp,
            '--show-dir',
            show,
            options=options)
        images = [
            f for _, _, files in os.walk(show) for f in files
            if f.endswith('.png')
        ]
        results[budget] = dict(
            num_cores=runner.model.backbone.last_num_cores,
            metrics=metrics,
            images=images)
    return results


@pytest.mark.parametrize('budget', [None, 8])
def test_budget_override_in_test_tool(budget_tests, budget):
    result = budget_tests[budget]
    # the micro model has 16 cores; the override made it run with 8
    assert result['num_cores'] == (budget or 16)
    metrics = result['metrics']
    assert 0 <= metrics['mIoU'] <= 100 and 0 < metrics['aAcc'] <= 100
    assert len(result['images']) == 4


def test_bad_budget_is_rejected(upernet_run, ade, tmp_path):
    """A budget the model cannot run is one line on stderr (exit 2), before
    the runner starts: no work dir, no checkpoint, no metrics."""
    ckpt = osp.join(upernet_run['work_dir'], 'iter_4.pth')
    line = tool_error(
        str(tmp_path), 'test.py', UPERNET, ckpt, '--work-dir',
        str(tmp_path / 'work'), '--out', str(tmp_path / 'metrics.json'),
        '--cfg-options', *_roots(ade), 'model.backbone.num_cores=12')
    assert line.startswith('test.py: error: model.backbone: num_cores=12 is '
                           'not a core budget'), line
    assert not osp.exists(tmp_path / 'metrics.json')
    assert not osp.exists(tmp_path / 'work')
    work_dir = str(tmp_path / 'train')
    line = tool_error(
        str(tmp_path), 'train.py', UPERNET, '--work-dir', work_dir,
        '--cfg-options', *_roots(ade), 'model.backbone.num_cores=12')
    assert line.startswith('train.py: error: model.backbone: num_cores=12 '
                           'is not a core budget'), line
    assert '[8, 16]' in line
    assert not osp.exists(work_dir)
    assert not any(
        f.endswith('.pth') for _, _, files in os.walk(tmp_path) for f in files)


def test_missing_dataset_root(tmp_path):
    missing = str(tmp_path / 'no_such_ade')
    work_dir = str(tmp_path / 'work')
    line = tool_error(
        str(tmp_path), 'train.py', UPERNET, '--work-dir', work_dir,
        '--cfg-options', *_roots(missing))
    assert f"dataset root '{missing}'" in line
    assert not osp.exists(work_dir)


def test_linear_probe_keeps_backbone_bit_identical(upernet_run, ade, tmp_path):
    """Probe the trained UperNet's backbone: only the head changes."""
    source = osp.join(upernet_run['work_dir'], 'iter_4.pth')
    work_dir = str(tmp_path / 'probe')
    tool_ok(
        str(tmp_path), 'train.py', PROBE, '--work-dir', work_dir,
        '--cfg-options', *_roots(ade),
        'model.backbone.init_cfg.type=Pretrained',
        f'model.backbone.init_cfg.checkpoint={source}')
    text = log_text(work_dir)
    assert train_iters(text) == [1, 2, 3, 4]
    init = {
        k: v
        for k, v in load_ckpt(source)['state_dict'].items()
        if k.startswith('backbone.')
    }
    mid = load_ckpt(osp.join(work_dir, 'iter_2.pth'))['state_dict']
    final = load_ckpt(osp.join(work_dir, 'iter_4.pth'))['state_dict']
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
    try:  # the backbone's init_weights raises: a traceback in a command
        proc = call_runner_tool(
            osp.join(TOOLS, 'train.py'),
            PROBE,
            '--work-dir',
            work_dir,
            '--cfg-options',
            *_roots(ade),
            'model.backbone.init_cfg.type=Pretrained',
            f'model.backbone.init_cfg.checkpoint={ckpt}',
            cwd=str(tmp_path))
    except ValueError as e:
        err = str(e)
    else:
        assert proc.returncode != 0
        assert 'Iter(train)' not in proc.stdout + proc.stderr
        err = proc.stderr
    assert 'does not fit' in err
    assert 'patch_embed.proj.weight' in err
    logs = [
        osp.join(d, f) for d, _, files in os.walk(work_dir) for f in files
        if f.endswith('.log')
    ]
    for log in logs:
        with open(log) as f:
            assert 'Iter(train)' not in f.read()
    assert not any(
        f.startswith('iter_') for _, _, files in os.walk(work_dir)
        for f in files)


def test_eval_budgets_sweep(upernet_run, budget_tests, ade, tmp_path):
    ckpt = osp.join(upernet_run['work_dir'], 'iter_4.pth')
    out_dir = str(tmp_path / 'sweep')
    tool_ok(
        str(tmp_path), 'analysis_tools/eval_budgets.py',
        UPERNET, ckpt, '--out-dir', out_dir, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', *_roots(ade))
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
    assert results[0]['metrics']['mIoU'] == pytest.approx(
        budget_tests[8]['metrics']['mIoU'])

    # the results of a run are not replaced unless asked, before any work
    before = snapshot(out_dir)
    line = tool_error(
        str(tmp_path), 'analysis_tools/eval_budgets.py',
        UPERNET, ckpt, '--out-dir', out_dir, '--work-dir',
        str(tmp_path / 'work2'), '--cfg-options', *_roots(ade))
    assert line.endswith(f"{osp.join(out_dir, 'budgets.json')} exists; "
                         'pass --overwrite to replace it')
    assert snapshot(out_dir) == before
    assert not osp.exists(tmp_path / 'work2')

    # a budget the model does not have: one-line error, nothing written
    bad_dir = str(tmp_path / 'bad')
    tool_error(
        str(tmp_path), 'analysis_tools/eval_budgets.py', UPERNET, ckpt,
        '--budgets', '8', '12', '--out-dir', bad_dir, '--work-dir',
        str(tmp_path / 'work_bad'), '--cfg-options', *_roots(ade))
    assert not osp.exists(bad_dir)
