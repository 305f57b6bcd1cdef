"""Benchmark peers (SDPA ViT, windowed ViT-SAM), goals and the high-resolution
whole-image mode of ``tools/analysis_tools/benchmark.py``, on tiny models.
"""
import json
import os.path as osp

import pytest
import torch
from _tool_helpers import REPO, call_tool, load_tool, run, warm_python

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')
MICRO_PROBE = osp.join(
    REPO, 'configs', 'demo',
    'linear-probe_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')
TINY = '{"embed_dims": 32, "num_layers": 4, "num_heads": 2, ' \
    '"mlp_ratio": 2.0}'


@pytest.fixture(scope='module')
def bench():
    return load_tool(TOOL)


def test_windowed_vit_is_vitsam_with_fused_attention(bench):
    """The windowed peer is mmpretrain's ViTSAM (windows, global blocks,
    relative-position bias) with the attention through SDPA: same outputs
    as ViTSAM's own attention, on a grid padded to whole windows."""
    from mmengine.registry import MODELS
    from mmpretrain.models.backbones.vit_sam import Attention

    from mmeac.analysis.vit_peers import FusedRelPosAttention
    assert bench.global_blocks(12) == [2, 5, 8, 11]
    assert bench.global_blocks(24) == [5, 11, 17, 23]
    bench._register_peers()
    arch = dict(embed_dims=32, num_layers=8, num_heads=2)
    cfg = bench.tool_peer_cfg('win_vit', arch, 320)
    assert cfg['arch']['global_attn_indexes'] == [1, 3, 5, 7]
    torch.manual_seed(0)
    fused = MODELS.build(cfg)
    stock = MODELS.build(dict(cfg, type='mmpretrain.ViTSAM'))
    with torch.no_grad():  # ViTSAM initialises the bias tables to zero
        for name, p in fused.named_parameters():
            if 'rel_pos' in name:
                p.normal_(0, 0.5)
    stock.load_state_dict(fused.state_dict())
    fused.eval()
    stock.eval()
    kinds = [type(layer.attn) for layer in fused.layers]
    assert kinds == [FusedRelPosAttention] * 8
    assert [layer.window_size for layer in fused.layers] == [14, 0] * 4
    assert all(type(layer.attn) is Attention for layer in stock.layers)
    x = torch.randn(1, 3, 320, 320)  # 20 x 20 patches: padded to 28 x 28
    with torch.no_grad():
        out = fused(x)[0]
        assert out.shape == (1, 32, 20, 20)
        torch.testing.assert_close(out, stock(x)[0], rtol=1e-4, atol=1e-4)
        for layer in fused.layers:  # the bias is used
            layer.attn.use_rel_pos = False
        assert not torch.allclose(out, fused(x)[0], atol=1e-3)


def test_windowed_vit_flops(bench):
    """Window attention: fewer FLOPs than a global ViT at 1024 px."""
    from mmeac.ops.flops import vit_backbone_flops
    win = bench.windowed_vit_flops(768, 12, (64, 64))
    dense = vit_backbone_flops(768, 12, 4, 64 * 64, num_extra_tokens=0)
    assert win < dense['total']
    assert dense['total'] - win == pytest.approx(4 * 768 * 8 *
                                                 (4096**2 - 70 * 70 * 196))


def test_goals(bench):
    rows = []
    for kind, size, budget, ms in [('eac', 1024, 64, 100.0),
                                   ('sdpa_vit', 1024, None, 190.0),
                                   ('win_vit', 1024, None, 170.0),
                                   ('eac', 2048, 64, 400.0),
                                   ('sdpa_vit', 2048, None, 1700.0),
                                   ('eac', 4096, 64, 1800.0),
                                   ('eac', 1024, 8, 10.0)]:
        rows.append(
            dict(
                scope='backbone',
                mode='forward',
                kind=kind,
                size=size,
                budget=budget,
                latency_ms=ms))
    got = {
        g['goal']: (round(g['value'], 3), g['met'])
        for g in bench.goals(rows)
    }
    assert got == {
        'EAC C=64 vs ViT (SDPA) at 1024 px: speedup >= 1.8': (1.9, True),
        'EAC C=64 vs windowed ViT (ViTSAM, SDPA) at 1024 px: speedup >= 1.8':
        (1.7, False),
        'EAC C=64 vs ViT (SDPA) at 2048 px: speedup >= 4.0': (4.25, True),
        'EAC C=64: t(4096) / t(2048) <= 4.3': (4.5, False),
    }


def test_peers_side_by_side(tmp_path):
    """A real subprocess: the tool's command line (CLI smoke)."""
    out = tmp_path / 'bench'
    res = run([
        warm_python(), TOOL, '--arch', TINY, '--max-cores', '16', '--budgets',
        '16', '--sizes', '64', '96', '--scopes', 'backbone', '--modes',
        'forward', '--models', 'eac', 'sdpa_vit', 'win_vit', '--skip',
        'win_vit@96', '--repeats', '2', '--no-progress', '--out-dir',
        str(out)
    ],
              cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / 'benchmark.json').read_text())
    rows = {(r['kind'], r['size']): r for r in report['results']}
    assert set(rows) == {(k, s)
                         for k in ('eac', 'sdpa_vit', 'win_vit')
                         for s in (64, 96)}
    assert rows.pop(('win_vit', 96))['skipped'].startswith('not run (--skip')
    for (kind, size), r in rows.items():
        assert r['latency_ms'] > 0 and r['peak_mem_mb'] > 0, r
        # timed round-robin: two rounds, every case in each
        assert len(r['latency_ms_runs']) == 2, r
        if kind == 'eac':
            assert r['speedup_vs_sdpa_vit'] == pytest.approx(
                rows[('sdpa_vit', size)]['latency_ms'] / r['latency_ms'])
            assert ('speedup_vs_win_vit' in r) == (size == 64)
    env = report['environment']
    assert env['loadavg_start'] and env['loadavg_end'] and env['date']
    md = (out / 'benchmark.md').read_text()
    assert 'relative-position bias as mask), mmpretrain ViTSAM' in md
    assert report['goals'] == []  # no 1024 / 2048 / 4096 px case


def test_high_resolution_whole_image_mode(tmp_path):
    """A tiny segmentor whole-image at 1024 px (16k patches, no sliding
    window); its dense twin is skipped there by the FLOPs estimate.
    In-process (``call_tool``)."""
    out = tmp_path / 'highres'
    argv = [
        '--config', MICRO_PROBE, '--scopes', 'model', '--modes', 'forward',
        '--models', 'eac', 'dense', '--sizes', '256', '1024', '--budgets',
        '16', '--single-run', '--max-gflops', '50', '--no-progress',
        '--out-dir',
        str(out)
    ]
    res = call_tool(TOOL, *argv, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / 'benchmark.json').read_text())
    rows = {(r['kind'], r['size']): r for r in report['results']}
    assert rows[('eac', 1024)]['num_patches'] == 128 * 128
    for key in [('eac', 256), ('eac', 1024), ('dense', 256)]:
        assert rows[key]['latency_ms'] > 0 and rows[key]['peak_mem_mb'] > 0
        assert len(rows[key]['latency_ms_runs']) == 1  # --single-run
    assert 'one run per case' in (out / 'benchmark.md').read_text()
    # linear in pixels: 16x the pixels, well under 16x^2 the memory
    big, small = rows[('eac', 1024)], rows[('eac', 256)]
    ratio = big['peak_mem_mb'] / small['peak_mem_mb']
    assert 4 < ratio < 40
    skipped = rows[('dense', 1024)]['skipped']
    assert 'GFLOPs > --max-gflops 50' in skipped
