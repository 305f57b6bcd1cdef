"""Core-periphery attention as a PyTorch custom operator.

The sequence is ``[cores; patches]`` with ``num_cores`` (C) core tokens first and
N patch tokens after them. Core queries attend to every key; patch queries
attend to the C core keys only, so no patch-to-patch score is ever formed and
the cost of one layer is ``2NC + C^2`` query-key pairs instead of ``(N + C)^2``.

The operator is registered in PyTorch's dispatcher as
``torch.ops.mmeac.core_periphery_attention`` with

* CPU and CUDA kernels (``scaled_dot_product_attention`` for each of the two
  query groups, which picks fused flash / memory-efficient kernels where the
  device has them, written into one preallocated output),
* a fake (meta) kernel, so ``torch.compile(fullgraph=True)`` and
  ``torch.export`` trace through it,
* an analytic backward, itself a custom operator
  (``mmeac::core_periphery_attention_backward``) whose memory is ``O(NC)``:
  attention probabilities are recomputed, never stored, and no ``(N + C)^2``
  tensor exists in either direction.

:func:`core_periphery_attention_reference` is the dense masked-attention
definition the operator is tested against.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'core_periphery_attention', 'core_periphery_attention_reference',
    'core_periphery_mask', 'sdpa_pair_attention'
]

_OP = 'mmeac::core_periphery_attention'
_OP_BWD = 'mmeac::core_periphery_attention_backward'


def _check_inputs(q: Tensor, k: Tensor, v: Tensor, num_cores: int) -> None:
    """Validate shapes; raise a ``ValueError`` that names the problem."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError('core_periphery_attention expects q, k, v of shape '
                         '[batch, heads, cores + patches, head_dim]; got '
                         f'{tuple(q.shape)}, {tuple(k.shape)}, '
                         f'{tuple(v.shape)}')
    if q.shape != k.shape or q.shape[:-1] != v.shape[:-1]:
        raise ValueError('core_periphery_attention expects q and k of one '
                         'shape and v sharing its first three dims; got '
                         f'{tuple(q.shape)}, {tuple(k.shape)}, '
                         f'{tuple(v.shape)}')
    if not 1 <= num_cores <= q.shape[2]:
        raise ValueError(f'num_cores must be in [1, {q.shape[2]}] (the '
                         f'sequence length), got {num_cores}')


def _new_output(q: Tensor, v: Tensor) -> Tensor:
    """Output ``[B, heads, L, dv]`` laid out as ``[B, L, heads, dv]``.

    That layout makes the usual ``out.transpose(1, 2).flatten(2)`` before the
    output projection a free view instead of a copy.
    """
    b, h, length, _ = q.shape
    return q.new_empty(b, length, h, v.shape[-1]).transpose(1, 2)


def _attend(q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


@torch.library.custom_op(_OP, mutates_args=(), device_types=('cpu', 'cuda'))
def _cp_attention(q: Tensor, k: Tensor, v: Tensor, num_cores: int,
                  scale: float) -> Tensor:
    """Composite kernel shared by the CPU and CUDA registrations."""
    _check_inputs(q, k, v, num_cores)
    c = num_cores
    out = _new_output(q, v)
    # core queries see every token
    out[:, :, :c] = _attend(q[:, :, :c], k, v, scale)
    # patch queries see the cores only
    if q.shape[2] > c:
        out[:, :, c:] = _attend(q[:, :, c:], k[:, :, :c], v[:, :, :c], scale)
    return out


@_cp_attention.register_fake
def _(q: Tensor, k: Tensor, v: Tensor, num_cores: int,
      scale: float) -> Tensor:
    torch._check(q.dim() == 4)
    return _new_output(q, v)


def _softmax_grad(q: Tensor, k: Tensor, v: Tensor, out: Tensor,
                  grad_out: Tensor,
                  scale: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``softmax(q k^T scale) v`` for one query group."""
    prob = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
    grad_v = prob.transpose(-2, -1) @ grad_out
    grad_p = grad_out @ v.transpose(-2, -1)
    delta = (grad_out * out).sum(-1, keepdim=True)
    grad_s = prob * (grad_p - delta) * scale
    grad_q = grad_s @ k
    grad_k = grad_s.transpose(-2, -1) @ q
    return grad_q, grad_k, grad_v


@torch.library.custom_op(
    _OP_BWD, mutates_args=(), device_types=('cpu', 'cuda'))
def _cp_attention_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor,
                           out: Tensor, num_cores: int,
                           scale: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Analytic backward; half precision inputs accumulate in float32."""
    dtype = q.dtype
    if dtype in (torch.float16, torch.bfloat16):
        grad_out, q, k, v, out = (t.float() for t in (grad_out, q, k, v, out))
    c = num_cores
    gq_c, gk, gv = _softmax_grad(q[:, :, :c], k, v, out[:, :, :c],
                                 grad_out[:, :, :c], scale)
    if q.shape[2] > c:
        gq_p, gk_c, gv_c = _softmax_grad(q[:, :, c:], k[:, :, :c],
                                         v[:, :, :c], out[:, :, c:],
                                         grad_out[:, :, c:], scale)
        gk[:, :, :c] += gk_c
        gv[:, :, :c] += gv_c
        gq = torch.cat([gq_c, gq_p], dim=2)
    else:
        gq = gq_c
    return gq.to(dtype), gk.to(dtype), gv.to(dtype)


@_cp_attention_backward.register_fake
def _(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor,
      num_cores: int, scale: float) -> Tuple[Tensor, Tensor, Tensor]:
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, num_cores, scale = inputs
    ctx.save_for_backward(q, k, v, output)
    ctx.num_cores = num_cores
    ctx.scale = scale


def _backward(ctx, grad_out: Tensor):
    q, k, v, out = ctx.saved_tensors
    gq, gk, gv = _cp_attention_backward(grad_out.contiguous(), q, k, v, out,
                                        ctx.num_cores, ctx.scale)
    return gq, gk, gv, None, None


_cp_attention.register_autograd(_backward, setup_context=_setup_context)


def core_periphery_attention(q: Tensor,
                             k: Tensor,
                             v: Tensor,
                             num_cores: int,
                             scale: Optional[float] = None) -> Tensor:
    """Core-periphery attention over ``[cores; patches]`` sequences.

    Args:
        q (Tensor): Queries, ``[B, heads, C + N, head_dim]``.
        k (Tensor): Keys, same shape as ``q``.
        v (Tensor): Values, ``[B, heads, C + N, head_dim_v]``.
        num_cores (int): C, the number of leading core tokens.
        scale (float, optional): Score scale. Defaults to
            ``1 / sqrt(head_dim)``.

    Returns:
        Tensor: ``[B, heads, C + N, head_dim_v]``; rows ``:C`` attended to
        all tokens, rows ``C:`` to the cores only.
    """
    _check_inputs(q, k, v, num_cores)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    return _cp_attention(q, k, v, int(num_cores), float(scale))


def core_periphery_mask(num_cores: int, seq_len: int,
                        device: Optional[torch.device] = None) -> Tensor:
    """Boolean ``[L, L]`` mask, True where query ``i`` may attend key ``j``.

    Allowed pairs: core query to any key, any query to a core key. Every
    patch-to-patch pair is blocked.
    """
    idx = torch.arange(seq_len, device=device)
    is_core = idx < num_cores
    return is_core[:, None] | is_core[None, :]


def core_periphery_attention_reference(
        q: Tensor,
        k: Tensor,
        v: Tensor,
        num_cores: int,
        scale: Optional[float] = None) -> Tensor:
    """Dense attention with the boolean core-periphery mask (for tests).

    Materialises the full ``(C + N)^2`` score matrix: use it only to check
    :func:`core_periphery_attention` on small inputs.
    """
    _check_inputs(q, k, v, num_cores)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    mask = core_periphery_mask(num_cores, q.shape[2], q.device)
    scores = scores.masked_fill(~mask, float('-inf'))
    return torch.softmax(scores, dim=-1) @ v


def sdpa_pair_attention(q: Tensor,
                        k: Tensor,
                        v: Tensor,
                        num_cores: int,
                        scale: Optional[float] = None) -> Tensor:
    """The authors' formulation: two SDPA calls and a concatenation.

    Kept as the baseline the operator is benchmarked against; it is
    differentiated by autograd through SDPA rather than by the operator's
    ``O(NC)`` backward.
    """
    _check_inputs(q, k, v, num_cores)
    c = num_cores
    core = F.scaled_dot_product_attention(q[:, :, :c], k, v, scale=scale)
    patch = F.scaled_dot_product_attention(
        q[:, :, c:], k[:, :, :c], v[:, :, :c], scale=scale)
    return torch.cat([core, patch], dim=2)
