"""veca2mmeac.py: every family of the authors' presets, the distillation
projection, RoPE settings carried into the model, and bad input.

The converter runs in-process (``call_tool``: its ``main(argv)``); one run
of the command line (``test_existing_destination_refused_unless_overwrite``)
shows the script works on its own."""
import os.path as osp

import pytest
import torch
from _tool_helpers import call_tool, fixture_eac, python_tool, run

from mmeac.models import EACViT

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = 'tools/model_converters/veca2mmeac.py'
FIXTURES = osp.join(ROOT, '..', 'shared', 'fixtures')
CKPT = osp.join(FIXTURES, 'veca_tiny_official_ckpt.pt')
OUTPUTS = osp.join(FIXTURES, 'veca_tiny_official_outputs.pt')
# skipped without ../shared/fixtures, failed under CI (tests/conftest.py)
needs_fixtures = pytest.mark.authors_fixtures

#: The authors' presets (spec, "Sizes") in their config's names, and their
#: distillation width with the default DINOv3-B teacher (768): S, S+ and L
#: carry a projection.
FAMILIES = {
    's': ('small', 384, 12, 6, 8 / 3, 768),
    's+': ('small_plus', 384, 12, 6, 4.0, 768),
    'b': ('base', 768, 12, 12, 8 / 3, None),
    'l': ('large', 1024, 24, 16, 8 / 3, 768),
}
PRESET_KEYS = ('model_family', 'hidden_dim', 'num_layers', 'num_heads',
               'mlp_ratio', 'distill_output_dim')
#: The rest of an authors' config, the same in every preset.
VECA_DEFAULTS = dict(
    num_query_tokens=64,
    nested_chunk_size=8,
    nested_budgets=tuple(range(8, 65, 8)),
    nested_budget_weights=(1, 1, 2, 2, 3, 3, 4, 4),
    patch_size=16,
    rope_shift_coords=0.08,
    rope_jitter_coords=None,
    rope_rescale_coords=2.0,
    rope_p_zero_freqs=0.125,
    rope_zero_freqs_from='low')


def _zeros(*shape, dtype):
    """Zeros that take no memory or disk (one element, expanded): the
    converter maps keys and shapes, and an L checkpoint stays small."""
    return torch.zeros((), dtype=dtype).expand(shape)


def veca_checkpoint(name, dtype=torch.bfloat16, fill=_zeros):
    """An authors'-format checkpoint of preset ``name`` (the spec's key
    layout)."""
    config = dict(VECA_DEFAULTS, **dict(zip(PRESET_KEYS, FAMILIES[name])))
    dims, layers = config['hidden_dim'], config['num_layers']
    hidden = int(dims * config['mlp_ratio'])
    out_dim = config['distill_output_dim']
    s = {
        'patch_embed.proj.weight': fill(dims, 3, 16, 16, dtype=dtype),
        'patch_embed.proj.bias': fill(dims, dtype=dtype),
        'pos_alpha': fill(layers - 1, dtype=dtype),
        'final_norm.weight': fill(dims, dtype=dtype),
        'final_norm.bias': fill(dims, dtype=dtype),
    }
    for i in range(8):
        s[f'query_token_chunks.{i}'] = fill(1, 8, dims, dtype=dtype)
        s[f'qcoord_chunks.{i}'] = fill(1, 8, 2, dtype=dtype)
    for i in range(layers - 1):
        s[f'pos_linears.{i}.weight'] = fill(2, dims, dtype=dtype)
        s[f'pos_linears.{i}.bias'] = fill(2, dtype=dtype)
    for i in range(layers):
        b = f'blocks.{i}.'
        for norm in ('norm_attn', 'norm_ffn'):
            s[b + norm + '.weight'] = fill(dims, dtype=dtype)
            s[b + norm + '.bias'] = fill(dims, dtype=dtype)
        for proj in ('q', 'k', 'v', 'out'):
            s[b + f'attn.{proj}_proj.weight'] = fill(dims, dims, dtype=dtype)
            s[b + f'attn.{proj}_proj.bias'] = fill(dims, dtype=dtype)
        s[b + 'fc1.weight'] = fill(2 * hidden, dims, dtype=dtype)
        s[b + 'fc1.bias'] = fill(2 * hidden, dtype=dtype)
        s[b + 'fc2.weight'] = fill(dims, hidden, dtype=dtype)
        s[b + 'fc2.bias'] = fill(dims, dtype=dtype)
    if out_dim is not None:
        s['output_proj.weight'] = fill(out_dim, dims, dtype=dtype)
        s['output_proj.bias'] = fill(out_dim, dtype=dtype)
    return dict(student=s, config=config, epoch=100)


def convert(*args):
    return call_tool(TOOL, *map(str, args))


@pytest.mark.parametrize('name', list(FAMILIES))
def test_every_family_converts(name, tmp_path):
    _, dims, _, _, _, out_dim = FAMILIES[name]
    src, dst = tmp_path / f'{name}.pt', tmp_path / f'{name}.pth'
    torch.save(veca_checkpoint(name), src)
    proc = convert(src, dst, '--arch', name)
    assert proc.returncode == 0, proc.stderr
    assert f'arch: {name} ' in proc.stdout
    notes = [ln for ln in proc.stdout.splitlines() if 'output_proj' in ln]
    out = torch.load(dst, map_location='cpu', weights_only=False)
    if out_dim is None:
        assert not notes and 'veca_output_proj' not in out['meta']
    else:
        # one line says where the distillation projection went
        assert len(notes) == 1, proc.stdout
        assert f'{dims}->{out_dim}' in notes[0]
        assert "meta['veca_output_proj']" in notes[0]
        proj = out['meta']['veca_output_proj']
        assert proj['weight'].shape == (out_dim, dims)
        assert proj['bias'].shape == (out_dim, )
    # the state dict is exactly EACViT(arch=name)'s, key for key and shape
    with torch.device('meta'):
        model = EACViT(arch=name)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in out['state_dict'].items()}
    assert got == own
    kwargs = out['meta']['eac_vit_kwargs']
    assert kwargs['rope_cfg'] == dict(
        zero_freq_ratio=0.125, shift=0.08, rescale=2.0, jitter=None)
    assert out['meta']['arch_name'] == name
    del out


def test_output_proj_checkpoint_loads_into_the_backbone(tmp_path):
    """S+ with a 384->768 projection: converted and loaded strictly; the
    authors' file also loads directly through init_cfg, saying it skipped
    the projection."""
    raw = veca_checkpoint('s+', dtype=torch.float32, fill=torch.randn)
    src, dst = tmp_path / 'splus.pt', tmp_path / 'splus.pth'
    torch.save(raw, src)
    assert convert(src, dst).returncode == 0
    for path in (dst, src):
        model = EACViT(
            arch='s+', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
        model.init_weights()
        torch.testing.assert_close(model.core_chunks[0].detach(),
                                   raw['student']['query_token_chunks.0'][0])


# ---------------------------------------------------------------- settings
@needs_fixtures
@pytest.mark.parametrize('key,value,setting', [
    ('rope_p_zero_freqs', 0.25, 'zero_freq_ratio=0.25'),
    ('rope_jitter_coords', 1.2, 'jitter=1.2'),
    ('rope_rescale_coords', None, 'rescale=1.0'),
])
def test_non_default_rope_settings_are_carried(tmp_path, key, value, setting):
    raw = torch.load(CKPT, map_location='cpu', weights_only=False)
    raw['config'] = dict(raw['config'], **{key: value})
    src, dst = tmp_path / 'odd.pt', tmp_path / 'odd.pth'
    torch.save(raw, src)
    proc = convert(src, dst)
    assert proc.returncode == 0, proc.stderr
    meta = torch.load(dst, map_location='cpu', weights_only=False)['meta']
    rope_cfg = meta['eac_vit_kwargs']['rope_cfg']
    name = setting.split('=')[0]
    assert rope_cfg[name] == (1.0 if value is None else value)

    for path in (dst, src):  # converted file and authors' file alike
        default = fixture_eac(path)
        before = {k: v.clone() for k, v in default.state_dict().items()}
        with pytest.raises(ValueError, match=rf'RoPE {setting}') as err:
            default.init_weights()
        assert f'rope_cfg=dict({setting})' in str(err.value)
        assert str(path) in str(err.value)
        # refused before anything was loaded
        after = default.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)

        matching = fixture_eac(
            path, rope_cfg={name: (1.0 if value is None else value)})
        matching.init_weights()  # loads


@needs_fixtures
def test_zeroed_frequency_setting_changes_the_output(tmp_path):
    """Why the check exists: p=0.25 vs the default 0.125 changes the eval
    output by more than the parity tolerance (1e-5), even in this tiny
    model (head_dim 32; 4e-3 relative on released sizes)."""
    case = torch.load(OUTPUTS, map_location='cpu', weights_only=False)[0]
    outs = []
    for ratio in (0.125, 0.25):
        model = fixture_eac(CKPT, rope_cfg=dict(zero_freq_ratio=ratio))
        if ratio != 0.125:
            raw = torch.load(CKPT, map_location='cpu', weights_only=False)
            raw['config'] = dict(raw['config'], rope_p_zero_freqs=ratio)
            torch.save(raw, tmp_path / 'p25.pt')
            model.init_cfg['checkpoint'] = str(tmp_path / 'p25.pt')
        model.init_weights()
        model.eval().num_cores = case['active_k']
        with torch.no_grad():
            outs.append(model(case['image'])[0])
    torch.testing.assert_close(
        outs[0].flatten(2).transpose(1, 2), case['patches'], atol=1e-5, rtol=0)
    assert (outs[0] - outs[1]).abs().max() > 1e-4


# --------------------------------------------------------------- bad input
@needs_fixtures
def test_existing_destination_refused_unless_overwrite(tmp_path):
    dst = tmp_path / 'mine.pth'
    dst.write_bytes(b'the user\'s own file')
    proc = convert(CKPT, dst)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('veca2mmeac.py: error: ')
    assert str(dst) in lines[0] and '--overwrite' in lines[0]
    assert dst.read_bytes() == b'the user\'s own file'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['mine.pth']

    # the command line itself, once: the script runs on its own
    proc = run(
        python_tool('model_converters/veca2mmeac.py', CKPT, str(dst),
                    '--overwrite'),
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert f'to {dst}' in proc.stdout
    out = torch.load(dst, map_location='cpu', weights_only=False)
    assert 'core_chunks.0' in out['state_dict']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['mine.pth']


@pytest.mark.parametrize('content,what', [
    (b'hello, not a checkpoint\n', 'is not a checkpoint'),
    (b'', 'is not a checkpoint'),
    (None, 'not a VECA checkpoint'),
    ('list', 'not a VECA checkpoint'),
])
def test_non_checkpoints_give_one_line(tmp_path, content, what):
    src = tmp_path / 'src.pt'
    if content is None:  # an mmeac / mmengine checkpoint, not the authors'
        torch.save({'state_dict': {'conv.weight': torch.zeros(1)}}, src)
    elif content == 'list':
        torch.save([1, 2, 3], src)
    else:
        src.write_bytes(content)
    dst = tmp_path / 'out.pth'
    proc = convert(src, dst)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('veca2mmeac.py: error: ')
    assert str(src) in lines[0] and what in lines[0]
    assert 'Traceback' not in proc.stderr and 'KeyError' not in proc.stderr
    assert ('expected' in lines[0] or 'missing' in lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['src.pt']
