"""Tests of the analysis tools (FLOPs, benchmarks, core visualisation).

Tiny models and sizes only; the tools are imported and their ``main`` is
called in-process (no subprocess start-up cost).
"""
import importlib.util
import json
import math
import os
import os.path as osp
import textwrap

import numpy as np
import pytest
import torch

import mmeac  # noqa: F401
from mmeac.analysis import core_attention_maps, peak_memory_bytes
from mmeac.models import EACViT
from mmeac.ops import HAS_COMPILED_KERNEL, core_periphery_attention_reference
from mmeac.ops.flops import (attention_pairs, count_module_flops,
                             counted_by_category, eac_backbone_flops,
                             fit_power_law, vit_backbone_flops)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = dict(embed_dims=32, num_layers=3, num_heads=2, mlp_ratio=2.66667)
TINY_JSON = json.dumps(TINY)


def _tool(name: str):
    from _tool_helpers import load_tool
    return load_tool(f'tools/analysis_tools/{name}.py')


def _tiny_eac(dense: bool = False, num_cores: int = 16) -> EACViT:
    torch.manual_seed(0)
    return EACViT(
        arch=TINY,
        max_cores=16,
        num_cores=num_cores,
        attn_cfg=dict(type='DenseRoPEAttention') if dense else None).eval()


# ------------------------------------------------------------------ FLOPs
@pytest.mark.parametrize('dense', [False, True])
@pytest.mark.parametrize('hw,num_cores', [((64, 64), 16), ((48, 80), 8)])
def test_counted_flops_equal_analytic(dense, hw, num_cores):
    model = _tiny_eac(dense, num_cores)
    counted = count_module_flops(model, torch.zeros(2, 3, *hw))
    n = (hw[0] // 16) * (hw[1] // 16)
    ana = eac_backbone_flops(
        32, 3, 2.66667, n, num_cores, dense=dense, batch_size=2)
    split = counted_by_category(counted)
    assert split['attention'] == ana['attention']
    assert split['linear'] == ana['linear']
    assert counted['total'] == ana['total']
    assert counted['aten.convolution'] == ana['patch_embed']
    if not dense:
        # the custom op is counted by its registered formula: 2NC + C^2
        assert counted['mmeac.core_periphery_attention'] == (
            3 * 4 * 2 * 32 * attention_pairs(n, num_cores))


def test_counted_flops_on_cpu_include_sdpa():
    """On a real CPU run SDPA lowers to the CPU flash kernel: counted too."""
    for dense in (False, True):
        model = _tiny_eac(dense, 8)
        counted = count_module_flops(
            model, torch.randn(1, 3, 48, 48), device='cpu')
        ana = eac_backbone_flops(32, 3, 2.66667, 9, 8, dense=dense)
        assert counted_by_category(counted)['attention'] == ana['attention']
        assert counted['total'] == ana['total']


def test_backward_flops_of_the_op_are_counted():
    """The op's backward (a custom op too) is counted: 2.5x its forward,
    as PyTorch counts SDPA backward (5 matmuls for 2)."""
    from mmeac.ops.flops import count_flops
    model = _tiny_eac(num_cores=16).train()
    model.train_num_cores = 8
    x = torch.randn(1, 3, 64, 64)
    counted = count_flops(lambda: model(x)[0].sum().backward())
    fwd = counted['mmeac.core_periphery_attention']
    assert fwd == 3 * 4 * 32 * attention_pairs(16, 8)
    assert counted['mmeac.core_periphery_attention_backward'] * 2 == 5 * fwd


def test_attention_pairs_and_paper_block_flops():
    assert attention_pairs(4096, 64) == 2 * 4096 * 64 + 64**2
    assert attention_pairs(4096, 64, dense=True) == 4160**2
    # one attention block (q/k/v/out + attention) of EAC-B at C=64 and of
    # DINOv3-B (N + 5 tokens, dense), GFLOPs per image, from the paper
    for size, eac_ref, dino_ref in ((512, 5.55, 8.11), (1024, 21.25, 71.02)):
        n = (size // 16)**2
        f = eac_backbone_flops(768, 1, 2.66667, n, 64)
        block = f['qkv'] + f['proj'] + f['attention']
        assert round(block / 1e9, 2) == eac_ref
        v = vit_backbone_flops(768, 1, 4, n, num_extra_tokens=5)
        assert round((v['qkv'] + v['proj'] + v['attention']) / 1e9,
                     2) == dino_ref
    # FLOP ratio dense / EAC of the EAC-B backbone: 1.85x at 1024 px
    r = [
        eac_backbone_flops(768, 12, 2.66667, 4096, 64, dense=d)['total']
        for d in (True, False)
    ]
    assert round(r[0] / r[1], 2) == 1.85


def test_vit_flops_counted_equal_analytic():
    from mmeac.analysis.analysis_models import build_model, vit_backbone_cfg
    vit = build_model(vit_backbone_cfg(TINY, img_size=(64, 48)))
    vit.eval()
    counted = count_module_flops(vit, torch.zeros(1, 3, 64, 48))
    ana = vit_backbone_flops(32, 3, 4, 12)
    assert counted['total'] == ana['total']
    assert counted_by_category(counted)['attention'] == ana['attention']


def test_fit_power_law():
    assert fit_power_law([1, 2, 4, 8], [3, 6, 12, 24]) == pytest.approx(1.0)
    assert fit_power_law([10, 100], [1, 100]) == pytest.approx(2.0)
    assert math.isnan(fit_power_law([5], [1]))


def test_get_flops_arch_json(tmp_path, capsys):
    tool = _tool('get_flops')
    out = tmp_path / 'flops.json'
    rc = tool.main([
        TINY_JSON, '--shape', '64', '96', '--max-cores', '16', '--num-cores',
        '8', '--json',
        str(out)
    ])
    assert rc == 0
    table = capsys.readouterr().out
    assert 'dense twin' in table and 'attention, analytic' in table
    res = json.loads(out.read_text())
    assert res['input'] == [1, 3, 64, 96]
    for kind in ('eac', 'dense'):
        net = res['networks'][kind]
        assert net['num_patches'] == 24 and net['num_cores'] == 8
        assert net['backbone_counted']['total'] == net['backbone_analytic'][
            'total']
    assert res['networks']['eac']['attention_pairs_per_layer'] == (2 * 24 * 8 +
                                                                   64)
    assert res['networks']['dense']['attention_pairs_per_layer'] == 32**2


def _write_tiny_seg_config(folder) -> str:
    path = osp.join(str(folder), 'tiny_seg.py')
    with open(path, 'w') as f:
        f.write(
            textwrap.dedent(f"""
            default_scope = 'mmseg'
            custom_imports = dict(imports=['mmeac'],
                                  allow_failed_imports=False)
            model = dict(
                type='EncoderDecoder',
                data_preprocessor=dict(
                    type='SegDataPreProcessor',
                    mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
                backbone=dict(type='EACViT', arch={TINY!r}, max_cores=16),
                decode_head=dict(
                    type='FCNHead', in_channels=32, channels=32,
                    num_convs=0, concat_input=False, num_classes=5,
                    norm_cfg=None, in_index=-1),
                test_cfg=dict(mode='whole'))
            """))
    return path


def test_get_flops_config_and_bad_input(tmp_path, capsys):
    tool = _tool('get_flops')
    cfg = _write_tiny_seg_config(tmp_path)
    out = tmp_path / 'f.json'
    assert tool.main([cfg, '--shape', '64', '--json', str(out)]) == 0
    res = json.loads(out.read_text())
    eac = res['networks']['eac']
    # the whole segmentor costs the backbone plus its head
    head = 2 * 16 * 32 * 5  # 1x1 conv, 32 -> 5 classes, 4x4 positions
    assert eac['model_counted']['total'] == (
        eac['backbone_counted']['total'] + head)
    bad = tmp_path / 'bad.json'
    assert tool.main(
        [cfg, '--shape', '64', '--num-cores', '12', '--json',
         str(bad)]) == 2
    assert 'num_cores=12' in capsys.readouterr().err
    assert not bad.exists()
    assert tool.main([TINY_JSON, '--shape', '8', '--json', str(bad)]) == 2
    assert not bad.exists()


# ------------------------------------------------------------- benchmark
def test_peak_memory_bytes_cpu():
    x = torch.randn(256, 1024)  # 1 MiB, allocated before: not counted

    def step():
        a = x * 2  # +1 MiB
        b = a + 1  # +1 MiB (peak: 2 MiB live)
        del a
        c = b * 3  # +1 MiB, a was freed: still 2 MiB
        return c.sum()

    peak = peak_memory_bytes(step, torch.device('cpu'))
    assert 2 * 2**20 <= peak < 2 * 2**20 + 4096


def test_benchmark_writes_results(tmp_path, capsys):
    tool = _tool('benchmark')
    out = tmp_path / 'bench'
    out.mkdir()
    (out / 'benchmark.md').write_text('my notes')
    argv = [
        '--arch', TINY_JSON, '--max-cores', '16', '--budgets', '8', '16',
        '--sizes', '32', '48', '--repeats', '1', '--warmup', '0', '--device',
        'cpu', '--no-progress', '--out-dir',
        str(out)
    ]
    # a file of the report's name is not replaced unless asked
    assert tool.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"benchmark.py: error: {out / 'benchmark.md'} exists; "
        'pass --overwrite to replace it'
    ]
    assert os.listdir(out) == ['benchmark.md']
    assert (out / 'benchmark.md').read_text() == 'my notes'
    # an --out-dir that is a file: refused before measuring, not after
    a_file = out / 'benchmark.md'
    assert tool.main(argv[:-1] + [str(a_file)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"benchmark.py: error: --out-dir '{a_file}' is a file, not a "
        'directory')
    assert a_file.read_text() == 'my notes'
    rc = tool.main(argv + ['--overwrite'])
    assert rc == 0
    assert sorted(os.listdir(out)) == [
        'benchmark.json', 'benchmark.md', 'benchmark.png'
    ]
    assert (out / 'benchmark.md').read_text() != 'my notes'
    rep = json.loads((out / 'benchmark.json').read_text())
    res = rep['results']
    # (2 EAC budgets + dense + sdpa_vit + win_vit + vit) x 2 sizes
    # x 2 scopes x 2 modes
    assert len(res) == 6 * 2 * 2 * 2
    assert {r['kind']
            for r in res} == {'eac', 'dense', 'sdpa_vit', 'win_vit', 'vit'}
    for r in res:
        assert 'skipped' not in r, r
        assert r['latency_ms'] > 0 and r['throughput_img_s'] > 0
        assert r['peak_mem_mb'] > 0
        assert len(r['latency_ms_runs']) == 1
        assert r['num_patches'] == (r['size'] // 16)**2
    eac8 = [r for r in res if r['kind'] == 'eac' and r['budget'] == 8]
    assert {(r['scope'], r['mode'])
            for r in eac8} == {(s, m)
                               for s in ('backbone', 'model')
                               for m in ('forward', 'train')}
    assert all('speedup_vs_vit' in r and 'speedup_vs_dense' in r for r in eac8)
    # training holds gradients and activations: more memory than forward
    for scope in ('backbone', 'model'):
        fwd, train = (
            next(r for r in eac8
                 if r['scope'] == scope and r['mode'] == m and r['size'] == 48)
            for m in ('forward', 'train'))
        assert train['peak_mem_mb'] > fwd['peak_mem_mb']
    assert len(rep['scaling']) == 6 * 2 * 2  # kinds x scopes x modes
    assert all(math.isfinite(s['time_exponent']) for s in rep['scaling'])
    md = (out / 'benchmark.md').read_text()
    for title in ('## backbone, forward', '## model, forward + backward',
                  '## How cost grows with resolution'):
        assert title in md
    for size, n in ((32, 4), (48, 9)):  # one row per scope and mode
        assert md.count(f'| {size} | {n} | mmseg ViT |') == 4
        assert md.count(f'| {size} | {n} | EAC C=8 |') == 4
    from PIL import Image
    with Image.open(out / 'benchmark.png') as img:
        assert img.size == (1800, 750)  # 4 panels x 2 rows


def test_benchmark_skips_and_rejects(tmp_path, capsys):
    tool = _tool('benchmark')
    out = tmp_path / 'b'
    rc = tool.main([
        '--arch', TINY_JSON, '--max-cores', '16', '--budgets', '16', '--sizes',
        '32', '--models', 'eac', 'vit', '--scopes', 'backbone', '--modes',
        'forward', '--repeats', '1', '--no-memory', '--mem-limit-gb', '1e-9',
        '--no-progress', '--out-dir',
        str(out)
    ])
    assert rc == 0
    res = json.loads((out / 'benchmark.json').read_text())['results']
    vit = [r for r in res if r['kind'] == 'vit']
    assert vit and all('estimated attention memory' in r['skipped']
                       for r in vit)
    assert all('latency_ms' in r for r in res if r['kind'] == 'eac')
    assert 'skipped' in (out / 'benchmark.md').read_text()
    bad = tmp_path / 'bad'
    assert tool.main([
        '--arch', TINY_JSON, '--max-cores', '16', '--budgets', '12',
        '--out-dir',
        str(bad)
    ]) == 2
    assert 'num_cores=12' in capsys.readouterr().err
    assert not bad.exists()


def test_benchmark_interrupted_keeps_measured_cases(tmp_path, monkeypatch):
    import mmeac.analysis.benchmark as bench_utils
    tool = _tool('benchmark')
    real, calls = bench_utils.time_interleaved, []

    def interrupt_second_group(*args, **kwargs):
        # one call per (scope, size, mode) group: forward, then train
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(bench_utils, 'time_interleaved',
                        interrupt_second_group)
    out = tmp_path / 'b'
    assert tool.main([
        '--arch', TINY_JSON, '--max-cores', '16', '--budgets', '8', '16',
        '--sizes', '32', '--models', 'eac', '--scopes', 'backbone',
        '--repeats', '1', '--no-memory', '--no-progress', '--out-dir',
        str(out)
    ]) == 0
    rep = json.loads((out / 'benchmark.json').read_text())
    assert rep['complete'] is False and rep['planned_cases'] == 4
    assert len(rep['results']) == 2
    assert 'Interrupted: 2 of 4 cases' in (out / 'benchmark.md').read_text()


def test_benchmark_attention_tiny(tmp_path):
    tool = _tool('benchmark_attention')
    out = tmp_path / 'attn.json'
    rc = tool.main([
        '--arch', TINY_JSON, '--max-cores', '16', '--num-cores', '16',
        '--sizes', '32', '64', '--op-sizes', '64', '--linear-size', '64',
        '--repeats', '1', '--op-repeats', '3', '--warmup', '0', '--json',
        str(out)
    ])
    assert rc == 0
    res = json.loads(out.read_text())
    assert [r['size'] for r in res['backbone']] == [32, 64]
    for r in res['backbone']:
        assert r['speedup'] > 0 and r['flop_ratio'] > 1
    op = res['op'][0]
    assert op['shape'] == [1, 2, 16 + 16, 16]
    for key in ('forward', 'train', 'forward_merged', 'train_merged',
                'forward_plain', 'train_plain'):
        assert op[f'ratio_{key}'] > 0
    assert len(op['op_forward']['runs_ms']) == 3
    assert len(op['sdpa_pair_merged_train']['runs_ms']) == 3
    assert len(op['op_plain_forward']['runs_ms']) == 3
    lin = res['linear']
    for key in ('ratio', 'ratio_plain', 'ratio_matmuls'):
        assert lin[key] > 0
    assert lin['matmuls_only']['median_ms'] > 0
    assert res['compiled_kernel'] == HAS_COMPILED_KERNEL
    # the plain-path variants left the op's CPU kernels enabled
    op_module = importlib.import_module('mmeac.ops.core_periphery_attention')
    assert not op_module._cp_attention._disabled_kernel
    assert not op_module._cp_attention_backward._disabled_kernel


def test_time_interleaved_rotates_and_stops():
    from mmeac.analysis.benchmark import time_interleaved
    calls = []
    fns = {name: (lambda n=name: calls.append(n)) for name in 'abc'}
    times = time_interleaved(fns, torch.device('cpu'), repeats=3, warmup=1)
    assert calls == list('abc'
                         'abc'
                         'bca'
                         'cab')
    assert {k: len(v) for k, v in times.items()} == dict(a=3, b=3, c=3)
    # a budget of 0 s still times one round
    times = time_interleaved(
        fns, torch.device('cpu'), repeats=5, warmup=0, max_seconds=0)
    assert all(len(v) == 1 for v in times.values())
    with pytest.raises(ValueError, match='repeats'):
        time_interleaved(fns, torch.device('cpu'), repeats=0)


@pytest.mark.parametrize('bias', [True, False])
def test_linear_only_fn_runs_the_backbone_matmuls(bias):
    """The 'linear layers alone' baseline performs exactly the backbone's
    linear and conv FLOPs (minus the tiny coordinate updates), with or
    without the bias adds."""
    from mmeac.ops.flops import count_flops
    tool = _tool('benchmark_attention')
    model = _tiny_eac(num_cores=16)
    with torch.no_grad():
        counted = count_flops(tool.linear_only_fn(model, 64, 0, bias=bias))
    ana = eac_backbone_flops(32, 3, 2.66667, 16, 16)
    assert counted['total'] == ana['linear'] - ana['coord_update']


# ------------------------------------------------------- attention maps
def _brute_force_maps(model: EACViT, x: torch.Tensor, c: int):
    """Maps and coordinates recomputed from each block's input (captured
    at the block, not at the attention), with the attention probabilities
    taken from the dense masked reference (its output for V = identity)."""
    inputs = []
    hooks = [
        layer.register_forward_pre_hook(lambda mod, args: inputs.append(args))
        for layer in model.layers
    ]
    try:
        model.num_cores = c
        model(x)
    finally:
        for h in hooks:
            h.remove()
    b = x.shape[0]
    hw = (x.shape[-2] // 16, x.shape[-1] // 16)
    rho = torch.cat(list(model.core_coord_chunks))[:c].expand(b, -1, -1)
    maps, coords = [], []
    for i, (layer, (tokens, num_cores,
                    rope)) in enumerate(zip(model.layers, inputs)):
        assert num_cores == c
        if i > 0:
            rho = model.coord_updates[i - 1](rho, tokens[:, :c])
        coords.append(torch.tanh(rho))
        q, k, v = layer.attn._qkv(layer.ln1(tokens), rope)
        length = tokens.shape[1]
        eye = torch.eye(length).expand(b, model.num_heads, -1, -1)
        prob = core_periphery_attention_reference(q, k, eye, c)
        core_to_patch = prob[:, :, :c, c:] * v[:, :, None, c:].norm(dim=-1)
        m = core_to_patch.mean(1)
        maps.append((m / m.sum(-1, keepdim=True)).unflatten(-1, hw))
    return maps, torch.stack(coords, 1)


def test_attention_maps_normalised_and_match_brute_force():
    model = _tiny_eac(num_cores=16)
    model.train()
    x = torch.randn(2, 3, 48, 80)
    res = core_attention_maps(model, x, num_cores=8)
    # state restored: train mode, budget, no hooks left behind
    assert model.training and model.num_cores == 16
    assert all(not lyr.attn._forward_pre_hooks for lyr in model.layers)
    assert res['layers'] == [0, 1, 2] and res['hw'] == (3, 5)
    assert res['coords'].shape == (2, 3, 8, 2)
    model.eval()
    with torch.no_grad():
        ref_maps, ref_coords = _brute_force_maps(model, x, 8)
    model.num_cores = 16
    for layer in range(3):
        m = res['maps'][layer]
        assert m.shape == (2, 8, 3, 5)
        assert (m >= 0).all()
        torch.testing.assert_close(
            m.sum((-1, -2)), torch.ones(2, 8), rtol=0, atol=1e-5)
        torch.testing.assert_close(m, ref_maps[layer], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(res['coords'], ref_coords)
    sel = core_attention_maps(model, x[:1], num_cores=16, layers=[-1])
    assert list(sel['maps']) == [2] and sel['maps'][2].shape == (1, 16, 3, 5)
    with pytest.raises(ValueError, match='out of range'):
        core_attention_maps(model, x, layers=[3])
    with pytest.raises(ValueError, match='budget'):
        core_attention_maps(model, x, num_cores=12)


# ------------------------------------------------------------ visualiser
def test_visualize_cores_writes_grids(tmp_path, capsys):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    tool = _tool('visualize_cores')
    cfg_path = _write_tiny_seg_config(tmp_path)
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(cfg_path).model)
    ckpt = tmp_path / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    img = tmp_path / 'img.png'
    from PIL import Image
    Image.fromarray((np.random.RandomState(0).rand(70, 100, 3) * 255).astype(
        np.uint8)).save(img)
    out = tmp_path / 'vis'
    argv = [
        str(img), cfg_path,
        str(ckpt), '--budgets', '8', '16', '--layers', '0', '2',
        '--num-show-cores', '4', '--out-dir',
        str(out)
    ]
    rc = tool.main(argv)
    assert rc == 0
    written = {name: (out / name).read_bytes() for name in os.listdir(out)}
    capsys.readouterr()
    # a second run replaces nothing unless asked
    (out / 'summary.json').write_text('edited')
    assert tool.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"visualize_cores.py: error: {out / 'attention_C8.png'} exists; "
        'pass --overwrite to replace it')
    assert (out / 'summary.json').read_text() == 'edited'
    assert sorted(os.listdir(out)) == sorted(written)
    assert tool.main(argv[:-1] + [str(out / 'summary.json')]) == 2
    assert capsys.readouterr().err.strip() == (
        f"visualize_cores.py: error: --out-dir '{out / 'summary.json'}' is "
        'a file, not a directory')
    assert (out / 'summary.json').read_text() == 'edited'
    assert tool.main(argv + ['--overwrite']) == 0
    assert {
        name: (out / name).read_bytes()
        for name in os.listdir(out)
    } == written  # the same maps again
    files = sorted(os.listdir(out))
    assert files == sorted([
        'attention_C8.png', 'attention_C16.png', 'trajectories_C8.png',
        'trajectories_C16.png', 'budgets_layer2.png', 'summary.json'
    ])
    panel = 160
    shapes = {}
    for name in files:
        if name.endswith('.png'):
            with Image.open(out / name) as im:
                shapes[name] = im.size  # (width, height)
    assert shapes['attention_C8.png'] == (4 * panel, 2 * panel)
    assert shapes['attention_C16.png'] == (4 * panel, 2 * panel)
    assert shapes['budgets_layer2.png'] == (4 * panel, 2 * panel)
    assert shapes['trajectories_C8.png'] == (4 * panel, 4 * panel)
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['input_shape'] == [1, 3, 64, 96]  # whole patches only
    assert len(summary['budgets']['16']['coords']) == 3  # one per block
    assert len(summary['budgets']['16']['coords'][0]) == 16
    area = summary['budgets']['8']['mean_effective_area']['2']
    assert 0 < area <= 1
    # a one-channel model gets the grayscale image, normalised
    pre = dict(mean=[127.5], std=[64.0], to_rgb=False)
    rgb, x1 = tool.load_image(str(img), [40], 16, pre, in_channels=1)
    assert rgb.shape == (32, 32, 3) and x1.shape == (1, 1, 32, 32)
    gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(x1[0, 0].numpy() * 64 + 127.5 - gray).max() < 1.0
    # a budget the model does not have: error, nothing written
    bad = tmp_path / 'bad'
    assert tool.main([
        str(img), cfg_path,
        str(ckpt), '--budgets', '24', '--out-dir',
        str(bad)
    ]) == 2
    assert 'budget 24' in capsys.readouterr().err
    assert not bad.exists()
    # a checkpoint without the backbone weights: error
    torch.save({'state_dict': {
        'decode_head.conv_seg.weight': torch.zeros(1)
    }}, tmp_path / 'head.pth')
    assert tool.main([
        str(img), cfg_path,
        str(tmp_path / 'head.pth'), '--out-dir',
        str(bad)
    ]) == 2
    assert 'missing' in capsys.readouterr().err


# ------------------------------------------------------ elasticity study
def test_elasticity_config_and_table():
    tool = _tool('elasticity_study')
    args = tool.parse_args(['--iters', '10'])
    nested = tool.seg_config(args, 'nested', '/data', '/w/nested')
    fixed = tool.seg_config(args, 'fixed', '/data', '/w/fixed')
    assert 'train_num_cores' not in nested['model']['backbone']
    assert fixed['model']['backbone']['train_num_cores'] == 64
    # trained alike except for the budget
    fixed['model']['backbone'].pop('train_num_cores')
    for key in ('model', 'train_dataloader', 'optim_wrapper',
                'param_scheduler', 'randomness'):
        assert nested[key] == fixed[key]
    # default: RGB with half of the patches blanked, train and val
    assert nested['model']['backbone']['in_channels'] == 3

    def mask_steps(cfg, split):
        return [
            t for t in cfg[f'{split}_dataloader']['dataset']['pipeline']
            if t['type'] == 'RandomPatchMask'
        ]

    (train_mask, ), (val_mask, ) = (mask_steps(nested, 'train'),
                                    mask_steps(nested, 'val'))
    assert not train_mask['fixed'] and val_mask['fixed']
    assert train_mask['patch_size'] == 8 and train_mask['ratio'] == 0.6
    plain = tool.seg_config(
        tool.parse_args(['--mask-ratio', '0']), 'nested', '/d', '/w')
    assert not mask_steps(plain, 'train') and not mask_steps(plain, 'val')
    gray = tool.seg_config(
        tool.parse_args(['--input', 'gray']), 'nested', '/d', '/w')
    assert gray['model']['backbone']['in_channels'] == 1
    assert gray['model']['data_preprocessor']['mean'] == [127.5]
    with pytest.raises(ValueError, match='mask-ratio'):
        tool.seg_config(
            tool.parse_args(['--mask-ratio', '1']), 'nested', '/d', '/w')
    from mmengine.registry import TRANSFORMS, init_default_scope
    blank = TRANSFORMS.build(val_mask)
    img = np.full((64, 48, 3), 200, np.uint8)
    out1 = blank(dict(img=img.copy(), img_path='a/b.jpg'))['img']
    out2 = blank(dict(img=img.copy(), img_path='a/b.jpg'))['img']
    np.testing.assert_array_equal(out1, out2)  # val: the same every time
    grid = out1[::8, ::8, 0]  # one value per 8 x 8 patch
    assert np.array_equal(out1, np.kron(out1[::8, ::8], np.ones((8, 8, 1))))
    assert set(np.unique(grid)) == {200.0, np.float32(103.53)}
    assert 0.2 < (grid != 200).mean() < 0.8
    from mmeac.analysis.analysis_models import build_model
    init_default_scope('mmseg')
    seg = build_model(tool.seg_config(args, 'fixed', '/d', '/w')['model'])
    assert seg.backbone.train_num_cores == 64
    assert seg.backbone.allowed_budgets == tuple(range(8, 65, 8))
    assert seg.backbone.patch_embed.proj.in_channels == 3
    # the settings the study records: its arguments and the patch count
    settings = dict(vars(args), num_patches=(args.size // args.patch_size)**2)
    report = dict(
        settings=settings,
        variants=dict(
            nested=dict(scores={
                8: dict(mIoU=40.0),
                32: dict(mIoU=50.0)
            }),
            fixed=dict(scores={
                8: dict(mIoU=10.0),
                32: dict(mIoU=50.0)
            })))
    md = tool.markdown(report)
    assert '| 8 | 40.00 | 80% | 10.00 | 20% |' in md
    assert '| 32 | 50.00 | 100% | 50.00 | 100% |' in md
    assert f'{args.iters} iterations x batch {args.batch_size} on ' in md


def test_elasticity_study_end_to_end(tmp_path):
    """A few iterations of both variants (in two processes): the study
    writes its table, JSON, configs and checkpoints.

    The tool runs in a process of its own (the warm interpreter, which has
    run no backward): it forks its variant workers, and a fork after
    autograd's threads started (any backward earlier in this pytest
    process) cannot run a backward in the child.
    """
    from _tool_helpers import python_tool, run
    tool = _tool('elasticity_study')
    work = tmp_path / 'study'
    res = run(
        python_tool(
            'analysis_tools/elasticity_study.py', '--work-dir', str(work),
            '--size', '32', '--num-train', '4', '--num-val', '2', '--iters',
            '2', '--batch-size', '2', '--arch',
            json.dumps(
                dict(embed_dims=32, num_layers=2, num_heads=2,
                     mlp_ratio=2.0)), '--max-cores', '16', '--jobs', '2'),
        cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    rep = json.loads((work / 'elasticity.json').read_text())
    nested, fixed = rep['variants']['nested'], rep['variants']['fixed']
    assert nested['train_budgets'] == [8, 16
                                       ] and fixed['train_budgets'] == [16]
    for v in (nested, fixed):
        assert sorted(v['scores'], key=int) == ['8', '16']
        assert all(0 <= s['mIoU'] <= 100 for s in v['scores'].values())
        assert osp.isfile(v['checkpoint'])
    assert (work / 'nested' / 'config.py').is_file()
    md = (work / 'elasticity.md').read_text()
    assert md.startswith('| budget C | nested mIoU | nested kept | fixed')
    assert md.count('\n| 8 |') == 1 and md.count('\n| 16 |') == 1
    assert tool.main(
        ['--work-dir',
         str(tmp_path / 'bad'), '--mask-ratio', '1.5']) == 2
    assert not (tmp_path / 'bad').exists()


def test_keep_freed_memory_applies_on_glibc():
    import platform

    from mmeac.analysis import keep_freed_memory, release_freed_memory
    with pytest.raises(ValueError, match='threshold_bytes'):
        keep_freed_memory(0)
    glibc = platform.libc_ver()[0] == 'glibc'
    assert keep_freed_memory() is glibc
    assert release_freed_memory() is glibc
