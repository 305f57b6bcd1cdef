"""Reading the EAC authors' (VECA) checkpoints.

The authors save ``{"student": state_dict, "config": {...}, ...}``; see
``docs``/the spec for the key layout. :func:`convert_veca_checkpoint` maps it
onto :class:`~mmeac.models.EACViT`'s names, fusing the separate q/k/v
projections into one ``qkv`` matrix, and reads the architecture from the
stored config (cross-checked against the tensor shapes).
"""
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    'ARCH_ZOO', 'is_veca_state_dict', 'strip_veca_prefixes',
    'veca_arch_from_checkpoint', 'convert_veca_state_dict',
    'convert_veca_checkpoint', 'arch_name', 'veca_output_proj',
    'describe_output_proj', 'rope_settings_mismatch'
]

#: Released sizes (patch 16, 64 cores).
ARCH_ZOO: Dict[str, dict] = {
    's': dict(embed_dims=384, num_layers=12, num_heads=6, mlp_ratio=2.66667),
    's+': dict(embed_dims=384, num_layers=12, num_heads=6, mlp_ratio=4.0),
    'b': dict(embed_dims=768, num_layers=12, num_heads=12, mlp_ratio=2.66667),
    'l': dict(embed_dims=1024, num_layers=24, num_heads=16, mlp_ratio=2.66667),
}

_PREFIXES = ('module.', 'student.', '_orig_mod.')
_VECA_MARKERS = ('query_token_chunks.0', 'qcoord_chunks.0')


def strip_veca_prefixes(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Drop ``module.`` / ``student.`` (and ``_orig_mod.``) key prefixes."""
    out = OrderedDict()
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key = key[len(prefix):]
                    changed = True
        out[key] = value
    return out


def is_veca_state_dict(state_dict: Dict[str, Tensor]) -> bool:
    """Whether the (prefix-stripped) keys are the authors' layout."""
    keys = set(strip_veca_prefixes(state_dict))
    return all(marker in keys for marker in _VECA_MARKERS)


def _unwrap(ckpt: dict) -> Tuple[Dict[str, Tensor], dict]:
    if not isinstance(ckpt, dict):
        raise ValueError('not a VECA checkpoint: expected a dict with a '
                         f'"student" state dict, got {type(ckpt).__name__}')
    config = ckpt.get('config') or {}
    for key in ('student', 'model', 'state_dict'):
        if isinstance(ckpt.get(key), dict):
            state = ckpt[key]
            break
    else:
        state = ckpt
    state = strip_veca_prefixes({
        k: v
        for k, v in state.items() if isinstance(v, Tensor)
    })
    missing = [m for m in _VECA_MARKERS if m not in state]
    if missing:
        some = sorted(state)[:6]
        raise ValueError(f'not a VECA checkpoint: keys {missing} are missing '
                         f'(found e.g. {some})')
    return state, config


def _count(state: Dict[str, Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    idx = {int(m.group(1)) for k in state if (m := regex.match(k))}
    return max(idx) + 1 if idx else 0


def veca_arch_from_checkpoint(ckpt: dict) -> dict:
    """Architecture kwargs of :class:`EACViT` for an authors' checkpoint.

    Returns:
        dict: ``arch`` (dict), ``max_cores``, ``core_chunk``, ``patch_size``,
        ``in_channels``, ``rope_cfg``, ``train_budgets`` and
        ``train_budget_weights``.
    """
    state, config = _unwrap(ckpt)
    embed_dims = state['patch_embed.proj.weight'].shape[0]
    num_layers = _count(state, r'blocks\.(\d+)\.')
    num_chunks = _count(state, r'query_token_chunks\.(\d+)$')
    chunk = state['query_token_chunks.0'].shape[-2]
    hidden2 = state['blocks.0.fc1.weight'].shape[0]
    num_heads = config.get('num_heads')
    if num_heads is None:
        raise ValueError('VECA checkpoint has no "config" with "num_heads"; '
                         'the head count cannot be read from the weights')
    mlp_ratio = float(config.get('mlp_ratio', hidden2 / 2 / embed_dims))
    if int(embed_dims * mlp_ratio) * 2 != hidden2:
        raise ValueError(f'config mlp_ratio {mlp_ratio} disagrees with '
                         f'blocks.0.fc1.weight of shape '
                         f'{tuple(state["blocks.0.fc1.weight"].shape)}')
    for key, stored in (('hidden_dim', embed_dims), ('num_layers', num_layers),
                        ('num_query_tokens',
                         num_chunks * chunk), ('nested_chunk_size', chunk)):
        if key in config and int(config[key]) != stored:
            raise ValueError(f'config {key}={config[key]} disagrees with the '
                             f'weights ({stored})')
    patch = state['patch_embed.proj.weight']
    max_cores = num_chunks * chunk
    budgets = tuple(
        config.get('nested_budgets', range(chunk, max_cores + 1, chunk)))
    weights = tuple(config.get('nested_budget_weights', (1, ) * len(budgets)))
    zero_from = config.get('rope_zero_freqs_from', 'low')
    if zero_from != 'low':
        raise ValueError(f'rope_zero_freqs_from={zero_from!r} is not '
                         "supported (only 'low')")
    return dict(
        arch=dict(
            embed_dims=embed_dims,
            num_layers=num_layers,
            num_heads=int(num_heads),
            mlp_ratio=mlp_ratio),
        max_cores=max_cores,
        core_chunk=chunk,
        patch_size=int(patch.shape[-1]),
        in_channels=int(patch.shape[1]),
        rope_cfg=_rope_cfg(config),
        train_budgets=budgets,
        train_budget_weights=weights)


def _rope_cfg(config: dict) -> dict:
    """``AxialRoPE2D`` kwargs from an authors' config (missing: defaults;
    ``None`` shift / rescale / jitter: off)."""
    jitter = config.get('rope_jitter_coords', None)
    return dict(
        zero_freq_ratio=float(config.get('rope_p_zero_freqs', 0.125)),
        shift=float(config.get('rope_shift_coords', 0.08) or 0.0),
        rescale=float(config.get('rope_rescale_coords', 2.0) or 1.0),
        jitter=None if jitter is None else float(jitter))


def _normalised_rope(cfg: dict) -> dict:
    """Settings with every "off" spelled one way (shift 0, rescale 1,
    jitter None) and the defaults filled in."""
    out = dict(
        base=100.0,
        zero_freq_ratio=0.125,
        shift=0.08,
        rescale=2.0,
        jitter=None)
    out.update({k: v for k, v in cfg.items() if k in out})
    out['shift'] = float(out['shift'] or 0.0)
    out['rescale'] = float(out['rescale'] or 1.0)
    if out['rescale'] <= 1:
        out['rescale'] = 1.0
    if out['jitter'] is not None and float(out['jitter']) <= 1:
        out['jitter'] = None
    return out


def rope_settings_mismatch(stored: dict, model: dict) -> Dict[str, tuple]:
    """RoPE settings on which a checkpoint and a model disagree.

    Args:
        stored (dict): The checkpoint's ``rope_cfg``.
        model (dict): ``AxialRoPE2D.settings()`` of the model.

    Returns:
        dict: ``name -> (checkpoint value, model value)``; empty if they
        agree.
    """
    a, b = _normalised_rope(stored), _normalised_rope(model)
    out = {}
    for key in a:
        va, vb = a[key], b[key]
        same = (va is None and vb is None) or (
            va is not None and vb is not None
            and abs(float(va) - float(vb)) <= 1e-9 * max(1.0, abs(va)))
        if not same:
            out[key] = (va, vb)
    return out


def arch_name(arch: dict) -> str:
    """The released size an arch dict equals (``'b'``...), else
    ``'custom'``."""
    for name, zoo in ARCH_ZOO.items():
        if all(abs(float(zoo[k]) - float(arch[k])) < 1e-4 for k in zoo):
            return name
    return 'custom'


def convert_veca_state_dict(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Map authors' keys to :class:`EACViT` keys (q/k/v fused)."""
    state = strip_veca_prefixes(state)
    out: Dict[str, Tensor] = OrderedDict()
    num_layers = _count(state, r'blocks\.(\d+)\.')
    for key, value in state.items():
        if m := re.match(r'query_token_chunks\.(\d+)$', key):
            out[f'core_chunks.{m.group(1)}'] = value.reshape(
                -1, value.shape[-1])
        elif m := re.match(r'qcoord_chunks\.(\d+)$', key):
            out[f'core_coord_chunks.{m.group(1)}'] = value.reshape(-1, 2)
        elif m := re.match(r'pos_linears\.(\d+)\.(weight|bias)$', key):
            out[f'coord_updates.{m.group(1)}.linear.{m.group(2)}'] = value
        elif key == 'pos_alpha':
            for i, alpha in enumerate(value.reshape(-1)):
                out[f'coord_updates.{i}.alpha'] = alpha.reshape(1).clone()
        elif key.startswith('patch_embed.proj.'):
            out[key] = value
        elif key.startswith('final_norm.'):
            out[key.replace('final_norm.', 'ln_final.')] = value
        elif m := re.match(r'blocks\.(\d+)\.(.+)$', key):
            i, rest = m.groups()
            mapped = {
                'norm_attn.weight': 'ln1.weight',
                'norm_attn.bias': 'ln1.bias',
                'norm_ffn.weight': 'ln2.weight',
                'norm_ffn.bias': 'ln2.bias',
                'attn.out_proj.weight': 'attn.proj.weight',
                'attn.out_proj.bias': 'attn.proj.bias',
                'fc1.weight': 'ffn.fc1.weight',
                'fc1.bias': 'ffn.fc1.bias',
                'fc2.weight': 'ffn.fc2.weight',
                'fc2.bias': 'ffn.fc2.bias',
            }.get(rest)
            if mapped is not None:
                out[f'layers.{i}.{mapped}'] = value
            elif not re.match(r'attn\.[qkv]_proj\.(weight|bias)$', rest):
                raise ValueError(f'unknown VECA key {key!r}')
        elif key.startswith('output_proj.'):
            continue  # distillation head, see veca_output_proj()
        else:
            raise ValueError(f'unknown VECA key {key!r}')
    for i in range(num_layers):
        for kind in ('weight', 'bias'):
            parts = [
                state.get(f'blocks.{i}.attn.{n}_proj.{kind}') for n in 'qkv'
            ]
            if all(p is not None for p in parts):
                out[f'layers.{i}.attn.qkv.{kind}'] = torch.cat(parts, dim=0)
            elif any(p is not None for p in parts):
                raise ValueError(f'blocks.{i}.attn: q/k/v_proj.{kind} are '
                                 'not all present')
    return out


def veca_output_proj(ckpt: dict) -> Dict[str, Tensor]:
    """The ``output_proj.*`` tensors of an authors' checkpoint (``weight``,
    ``bias``), empty when it has none.

    It is the distillation head mapping the student width to the teacher's
    (e.g. 384 -> 768); the backbone's features do not use it.
    """
    state, _ = _unwrap(ckpt)
    return {
        k[len('output_proj.'):]: v
        for k, v in state.items() if k.startswith('output_proj.')
    }


def describe_output_proj(proj: Dict[str, Tensor]) -> str:
    """One line about a dropped or set-aside ``output_proj``."""
    weight = proj.get('weight')
    shape = '' if weight is None else (
        f' {weight.shape[1]}->{weight.shape[0]}')
    return (f'output_proj{shape} (the distillation projection to the '
            'teacher width) is not part of the backbone')


def convert_veca_checkpoint(ckpt: dict) -> Tuple[Dict[str, Tensor], dict]:
    """Convert a loaded authors' checkpoint.

    Returns:
        tuple: (mmeac state dict, :func:`veca_arch_from_checkpoint` kwargs).
    """
    arch = veca_arch_from_checkpoint(ckpt)
    state, _ = _unwrap(ckpt)
    return convert_veca_state_dict(state), arch


def load_veca_or_mmeac(path: str,
                       prefix: Optional[str] = None,
                       with_settings: bool = False):
    """Backbone state dict from an authors' or an mmeac checkpoint file.

    Args:
        path (str): Checkpoint path or URL (read by MMEngine's loader).
        prefix (str, optional): Keep only keys under this prefix (e.g.
            ``'backbone.'`` for a whole-model checkpoint) and strip it. When
            None, a whole-model checkpoint (keys ``backbone.*``) is reduced to
            its backbone automatically.
        with_settings (bool): Also return the settings the file records
            beyond its tensors: ``{'rope_cfg': ...}`` for an authors' file
            or one converted by ``veca2mmeac.py``, else ``{}``.

    Returns:
        dict | tuple: The state dict, or ``(state dict, settings)``.
    """
    from mmengine.logging import print_log
    from mmengine.runner.checkpoint import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    if isinstance(ckpt, dict) and is_veca_state_dict(
            ckpt.get('student', ckpt.get('state_dict', ckpt))):
        state, kwargs = convert_veca_checkpoint(ckpt)
        proj = veca_output_proj(ckpt)
        if proj:
            print_log(
                f'{path}: ignoring {describe_output_proj(proj)}',
                logger='current')
        settings = dict(rope_cfg=kwargs['rope_cfg'])
        return (state, settings) if with_settings else state
    settings = {}
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if isinstance(meta, dict) and meta.get('source') == 'veca':
        rope_cfg = (meta.get('eac_vit_kwargs') or {}).get('rope_cfg')
        if rope_cfg is not None:
            settings['rope_cfg'] = rope_cfg
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state = strip_veca_prefixes(state)
    if (prefix is None and 'patch_embed.proj.weight' not in state
            and any(k.startswith('backbone.') for k in state)):
        prefix = 'backbone.'
    if prefix:
        state = {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
        if not state:
            raise ValueError(f'checkpoint {path} has no key under prefix '
                             f'{prefix!r}')
    return (state, settings) if with_settings else state
