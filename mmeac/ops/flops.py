"""FLOPs of EAC and ViT backbones: analytic formulas and counting.

Convention: one multiply-add is 2 FLOPs (as in the EAC paper and in
:class:`torch.utils.flop_counter.FlopCounterMode`); only matrix products,
convolutions and attention are counted (norms, activations, RoPE rotations
and softmax are not, by either the formulas or the counter).

Per layer of an EAC backbone with ``L = C + N`` tokens, width ``D`` and a
SwiGLU hidden size ``h``::

    qkv    2 L D (3 D)        proj  2 L D D
    fc1    2 L D (2 h)        fc2   2 L h D
    attn   4 D (2 N C + C^2)      (dense twin: 4 D (N + C)^2)

plus the patch embedding ``2 N D (3 p^2)`` once and the core coordinate
updates ``2 C D 2`` before every block but the first.

:func:`register_flop_formulas` teaches ``FlopCounterMode`` the custom
operator ``torch.ops.mmeac.core_periphery_attention`` (and its backward) and
the CPU flash-attention kernel that ``scaled_dot_product_attention`` lowers
to on CPU, which PyTorch's counter does not know: without them the counter
reports 0 FLOPs for every attention on CPU.
"""
import math
from typing import Callable, Dict, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.utils import flop_counter as _fc

__all__ = [
    'attention_pairs', 'eac_backbone_flops', 'vit_backbone_flops',
    'register_flop_formulas', 'count_flops', 'counted_by_category',
    'count_module_flops', 'swiglu_hidden', 'format_flops', 'fit_power_law'
]


def attention_pairs(num_patches: int,
                    num_cores: int,
                    dense: bool = False) -> int:
    """Query-key pairs of one attention layer.

    Core-periphery: ``C (C + N) + N C = 2 N C + C^2``; dense: ``(N + C)^2``.
    """
    n, c = int(num_patches), int(num_cores)
    return (n + c)**2 if dense else 2 * n * c + c * c


def swiglu_hidden(embed_dims: int, mlp_ratio: float) -> int:
    """SwiGLU hidden size ``h = int(D * mlp_ratio)`` of the EAC blocks."""
    return int(embed_dims * mlp_ratio)


def eac_backbone_flops(embed_dims: int,
                       num_layers: int,
                       mlp_ratio: float,
                       num_patches: int,
                       num_cores: int,
                       patch_size: int = 16,
                       in_channels: int = 3,
                       dense: bool = False,
                       batch_size: int = 1) -> Dict[str, int]:
    """Analytic forward FLOPs of an :class:`EACViT` (or its dense twin).

    Args:
        embed_dims (int): D.
        num_layers (int): Blocks.
        mlp_ratio (float): SwiGLU ratio (``h = int(D * mlp_ratio)``).
        num_patches (int): N.
        num_cores (int): C, the budget.
        patch_size (int): Patch size p. Defaults to 16.
        in_channels (int): Image channels. Defaults to 3.
        dense (bool): The dense twin (all tokens attend to all).
        batch_size (int): Images. Defaults to 1.

    Returns:
        dict: FLOPs of ``patch_embed``, ``qkv``, ``proj``, ``ffn``,
        ``coord_update``, ``linear`` (all of them but attention),
        ``attention`` and ``total``.
    """
    d, n, c, b = embed_dims, num_patches, num_cores, batch_size
    tokens = n + c
    h = swiglu_hidden(d, mlp_ratio)
    out = dict(
        patch_embed=2 * b * n * d * in_channels * patch_size**2,
        qkv=num_layers * 2 * b * tokens * d * 3 * d,
        proj=num_layers * 2 * b * tokens * d * d,
        ffn=num_layers * (2 * b * tokens * d * 2 * h + 2 * b * tokens * h * d),
        coord_update=(num_layers - 1) * 2 * b * c * d * 2,
    )
    out['linear'] = sum(out.values())
    out['attention'] = num_layers * 4 * b * d * attention_pairs(n, c, dense)
    out['total'] = out['linear'] + out['attention']
    return out


def vit_backbone_flops(embed_dims: int,
                       num_layers: int,
                       mlp_ratio: float,
                       num_patches: int,
                       num_extra_tokens: int = 1,
                       patch_size: int = 16,
                       in_channels: int = 3,
                       batch_size: int = 1) -> Dict[str, int]:
    """Analytic forward FLOPs of a plain ViT (mmseg ``VisionTransformer``).

    GELU MLP of hidden size ``D * mlp_ratio``, ``num_extra_tokens`` (the
    CLS token) added to the N patches.
    """
    d, b = embed_dims, batch_size
    tokens = num_patches + num_extra_tokens
    h = int(d * mlp_ratio)
    out = dict(
        patch_embed=2 * b * num_patches * d * in_channels * patch_size**2,
        qkv=num_layers * 2 * b * tokens * d * 3 * d,
        proj=num_layers * 2 * b * tokens * d * d,
        ffn=num_layers * 4 * b * tokens * d * h,
    )
    out['linear'] = sum(out.values())
    out['attention'] = num_layers * 4 * b * d * tokens * tokens
    out['total'] = out['linear'] + out['attention']
    return out


# ----------------------------------------------------------- counter hooks
def _first_int(args) -> int:
    """The first plain int among the non-tensor arguments (``num_cores``);
    tensors arrive as ``torch.Size`` shapes, which are skipped."""
    for a in args:
        if isinstance(a, int) and not isinstance(a, bool):
            return a
    raise ValueError('core-periphery FLOP formula: no num_cores argument')


def _core_periphery_flop(q_shape,
                         k_shape,
                         v_shape,
                         *args,
                         out_shape=None,
                         **kwargs) -> int:
    b, h, length, d = q_shape
    c = _first_int(args)
    n = length - c
    total = _fc.sdpa_flop_count((b, h, c, d), (b, h, length, d),
                                (b, h, length, v_shape[-1]))
    if n > 0:
        total += _fc.sdpa_flop_count((b, h, n, d), (b, h, c, d),
                                     (b, h, c, v_shape[-1]))
    return total


def _core_periphery_backward_flop(grad_shape,
                                  q_shape,
                                  k_shape,
                                  v_shape,
                                  *args,
                                  out_shape=None,
                                  **kwargs) -> int:
    """``args``: the saved output (and log-sum-exp) shapes, then
    ``num_cores`` and ``scale``."""
    b, h, length, d = q_shape
    dv = v_shape[-1]
    c = _first_int(args)
    n = length - c
    total = _fc.sdpa_backward_flop_count((b, h, c, dv), (b, h, c, d),
                                         (b, h, length, d), (b, h, length, dv))
    if n > 0:
        total += _fc.sdpa_backward_flop_count((b, h, n, dv), (b, h, n, d),
                                              (b, h, c, d), (b, h, c, dv))
    return total


def _cpu_sdpa_flop(q_shape,
                   k_shape,
                   v_shape,
                   *args,
                   out_shape=None,
                   **kwargs) -> int:
    return _fc.sdpa_flop_count(q_shape, k_shape, v_shape)


def _cpu_sdpa_backward_flop(grad_shape,
                            q_shape,
                            k_shape,
                            v_shape,
                            *args,
                            out_shape=None,
                            **kwargs) -> int:
    return _fc.sdpa_backward_flop_count(grad_shape, q_shape, k_shape, v_shape)


def register_flop_formulas() -> None:
    """Register the FLOP formulas ``FlopCounterMode`` lacks (idempotent).

    * ``mmeac::core_periphery_attention``: two SDPA groups, core queries
      against all keys and patch queries against the core keys;
    * ``mmeac::core_periphery_attention_backward``: PyTorch's SDPA backward
      count for the same two groups;
    * ``aten::_scaled_dot_product_flash_attention_for_cpu`` (+ backward):
      what ``F.scaled_dot_product_attention`` runs on CPU, counted like the
      CUDA kernels.
    """
    import mmeac.ops  # noqa: F401  (defines torch.ops.mmeac.*)
    aten = torch.ops.aten
    table = [
        (torch.ops.mmeac.core_periphery_attention, _core_periphery_flop),
        (torch.ops.mmeac.core_periphery_attention_backward,
         _core_periphery_backward_flop),
    ]
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu'):
        table.append(
            (aten._scaled_dot_product_flash_attention_for_cpu, _cpu_sdpa_flop))
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu_backward'):
        table.append(
            (aten._scaled_dot_product_flash_attention_for_cpu_backward,
             _cpu_sdpa_backward_flop))
    for target, formula in table:
        if target not in _fc.flop_registry:
            _fc.register_flop_formula(target)(formula)


def _op_name(op) -> str:
    return str(getattr(op, '_qualified_op_name', op)).replace('::', '.')


def count_flops(fn: Callable[[], object]) -> Dict[str, int]:
    """Run ``fn()`` under ``FlopCounterMode`` and return FLOPs per op.

    The mmeac formulas are registered first. Keys are op names such as
    ``aten.addmm`` or ``mmeac.core_periphery_attention``; ``total`` is
    their sum.
    """
    register_flop_formulas()
    with _fc.FlopCounterMode(display=False) as mode:
        fn()
    counts = {
        _op_name(op): int(v)
        for op, v in mode.get_flop_counts().get('Global', {}).items()
    }
    counts['total'] = int(mode.get_total_flops())
    return counts


#: Ops that make up each analytic category.
_ATTENTION_OPS = ('mmeac.core_periphery_attention',
                  'aten._scaled_dot_product_flash_attention_for_cpu',
                  'aten._scaled_dot_product_flash_attention',
                  'aten._scaled_dot_product_efficient_attention',
                  'aten._scaled_dot_product_cudnn_attention', 'aten.bmm')


def counted_by_category(counts: Dict[str, int]) -> Dict[str, int]:
    """Split :func:`count_flops` output into ``attention`` / ``linear``.

    ``attention`` holds the attention kernels: the custom op, SDPA, and
    ``bmm`` (attention composed of batched matmuls: SDPA on the meta
    device, ``nn.MultiheadAttention``; linear layers count as ``addmm`` /
    ``mm``). ``linear`` is every other counted op (linear layers and
    convolutions).
    """
    attention = sum(v for k, v in counts.items() if k in _ATTENTION_OPS)
    total = counts.get('total', sum(counts.values()))
    return dict(attention=attention, linear=total - attention, total=total)


def count_module_flops(model: nn.Module,
                       inputs: Tensor,
                       forward: Optional[Callable[[nn.Module, Tensor],
                                                  object]] = None,
                       device: str = 'meta') -> Dict[str, int]:
    """Count the forward FLOPs of ``model`` on ``inputs``.

    By default the model and the input are moved to the ``meta`` device,
    where the counter sees every op without computing anything (so even
    dense attention at 2048 px is counted instantly); the model is left on
    ``meta``, pass a copy if it is still needed. ``device=None`` counts
    where the model is, with real computation.

    Args:
        model (nn.Module): Model in eval mode.
        inputs (Tensor): Input batch.
        forward (callable, optional): ``forward(model, inputs)``; defaults
            to ``model(inputs)``.
        device (str, optional): Device to count on. Defaults to 'meta'.
    """
    if device is not None:
        model = model.to(device)
        inputs = inputs.to(device)
    forward = forward or (lambda m, x: m(x))
    with torch.no_grad():
        return count_flops(lambda: forward(model, inputs))


def format_flops(value: float, unit: str = 'G') -> str:
    """``1.23e9 -> '1.230'`` in GFLOPs (or ``'M'`` / ``'T'``)."""
    scale = {'M': 1e6, 'G': 1e9, 'T': 1e12}[unit]
    return f'{value / scale:.3f}'


def fit_power_law(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares exponent k of ``y ~ a x^k`` (log-log slope).

    Returns NaN with fewer than two distinct positive points.
    """
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys)
           if x > 0 and y > 0]
    if len({p[0] for p in pts}) < 2:
        return float('nan')
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx)**2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    return sxy / sxx
