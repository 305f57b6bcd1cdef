"""Core-periphery attention as a PyTorch custom operator.

The sequence is ``[cores; patches]`` with ``num_cores`` (C) core tokens first and
N patch tokens after them. Core queries attend to every key; patch queries
attend to the C core keys only, so no patch-to-patch score is ever formed and
the cost of one layer is ``2NC + C^2`` query-key pairs instead of ``(N + C)^2``.

The operator is registered in PyTorch's dispatcher as
``torch.ops.mmeac.core_periphery_attention`` with

* CPU and CUDA kernels. On the CPU in float32, mmeac's compiled kernel
  (``mmeac_C::cp_attention_fwd``, see :mod:`mmeac.ops.compiled`) computes
  both query groups straight into the output. Otherwise each query group is
  one fused attention call, concatenated: ATen's flash kernel on CPU (which
  also returns the row log-sum-exp), ``scaled_dot_product_attention``'s
  flash / memory-efficient kernels on CUDA,
* a fake (meta) kernel, so ``torch.compile(fullgraph=True)`` and
  ``torch.export`` trace through it,
* outputs stored token-major (``[B, L, heads, d]`` in memory, returned as
  the ``[B, heads, L, d]`` view), so that merging the heads for the output
  projection needs no copy,
* a backward that is itself a custom operator
  (``mmeac::core_periphery_attention_backward``) with ``O(NC)`` memory: the
  fused flash backward on CPU, an analytic recomputation of the
  probabilities elsewhere. No ``(N + C)^2`` tensor exists in either
  direction.

:func:`core_periphery_attention_reference` is the dense masked-attention
definition the operator is tested against.
"""
import functools
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .compiled import compiled_ops_available, use_compiled_kernels

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


_CPU_FLASH = getattr(torch.ops.aten,
                     '_scaled_dot_product_flash_attention_for_cpu', None)
_CPU_FLASH_BWD = getattr(torch.ops.aten,
                         '_scaled_dot_product_flash_attention_for_cpu_backward',
                         None)


def _uses_cpu_flash(q: Tensor) -> bool:
    """CPU tensors go through ATen's fused flash kernels (forward keeps the
    log-sum-exp so that the fused backward can be used too)."""
    return q.device.type == 'cpu' and _CPU_FLASH is not None


def _forward_kernel(q: Tensor, k: Tensor, v: Tensor) -> str:
    """Which forward runs: ``'compiled'`` (mmeac's kernel: float32 CPU with
    contiguous last dims), ``'flash'`` (ATen's CPU flash kernel) or
    ``'sdpa'``. The first two also return the log-sum-exp."""
    if use_compiled_kernels(q, k, v) and all(
            t.stride(-1) == 1 for t in (q, k, v)):
        return 'compiled'
    return 'flash' if _uses_cpu_flash(q) else 'sdpa'


def _token_major(x: Tensor) -> Tensor:
    """``x`` ``[B, heads, L, ...]`` stored token-major (``[B, L, heads, ...]``
    in memory), returned as the same ``[B, heads, L, ...]`` view.

    The operator's outputs use this layout: ``out.transpose(1, 2)`` is then
    contiguous, so merging the heads before the output projection is free,
    and ATen's CPU flash kernels produce it natively.
    """
    return x.transpose(1, 2).contiguous().transpose(1, 2)


def _cat_tokens(core: Tensor, patch: Tensor) -> Tensor:
    """Concatenate along the token dim (2) into token-major storage: one
    contiguous copy per part when the parts are token-major already."""
    return torch.cat([core.transpose(1, 2), patch.transpose(1, 2)],
                     dim=1).transpose(1, 2)


def _empty_token_major(like: Tensor, shape: Tuple[int, ...],
                       dtype: Optional[torch.dtype] = None) -> Tensor:
    """Uninitialised ``shape`` (``[B, heads, L, ...]``) in token-major
    storage, as the kernels return it (used by the fake kernels)."""
    swapped = (shape[0], shape[2], shape[1]) + tuple(shape[3:])
    return like.new_empty(swapped, dtype=dtype).transpose(1, 2)


@torch.library.custom_op(_OP, mutates_args=(), device_types=('cpu', 'cuda'))
def _cp_attention(q: Tensor, k: Tensor, v: Tensor, num_cores: int,
                  scale: float) -> Tuple[Tensor, Tensor]:
    """Kernel for CPU and CUDA; returns the output and, on CPU, the
    log-sum-exp of every query row (empty elsewhere)."""
    _check_inputs(q, k, v, num_cores)
    c = num_cores
    kernel = _forward_kernel(q, k, v)
    if kernel == 'compiled':
        return torch.ops.mmeac_C.cp_attention_fwd(q, k, v, c, scale)
    if kernel == 'flash':
        out, lse = _CPU_FLASH(q[:, :, :c], k, v, scale=scale)
        if q.shape[2] == c:
            return _token_major(out), _token_major(lse)
        out_p, lse_p = _CPU_FLASH(
            q[:, :, c:], k[:, :, :c], v[:, :, :c], scale=scale)
        return _cat_tokens(out, out_p), _cat_tokens(lse, lse_p)
    # CUDA (and CPU without ATen's flash op): SDPA's fused kernels
    out = F.scaled_dot_product_attention(q[:, :, :c], k, v, scale=scale)
    if q.shape[2] > c:
        out = _cat_tokens(
            out,
            F.scaled_dot_product_attention(
                q[:, :, c:], k[:, :, :c], v[:, :, :c], scale=scale))
    return _token_major(out), q.new_empty(0, dtype=torch.float32)


def _fake_outputs(q: Tensor, v: Tensor,
                  lse_dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """Token-major output and log-sum-exp as the CPU kernels return them."""
    out = _empty_token_major(q, tuple(q.shape[:-1]) + (v.shape[-1], ))
    return out, _empty_token_major(q, tuple(q.shape[:3]), dtype=lse_dtype)


@_cp_attention.register_fake
def _(q: Tensor, k: Tensor, v: Tensor, num_cores: int,
      scale: float) -> Tuple[Tensor, Tensor]:
    torch._check(q.dim() == 4)
    if _forward_kernel(q, k, v) == 'sdpa':
        out = _empty_token_major(q, tuple(q.shape[:-1]) + (v.shape[-1], ))
        return out, q.new_empty(0, dtype=torch.float32)
    # the real kernels: float64 lse only from CPU flash on float64 inputs
    lse_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
    return _fake_outputs(q, v, lse_dtype)


if compiled_ops_available():

    @torch.library.register_fake('mmeac_C::cp_attention_fwd')
    def _(q: Tensor, k: Tensor, v: Tensor, num_cores: int,
          scale: float) -> Tuple[Tensor, Tensor]:
        return _fake_outputs(q, v, torch.float32)


def _softmax_grad(q: Tensor, k: Tensor, v: Tensor, out: Tensor,
                  grad_out: Tensor,
                  scale: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``softmax(q k^T scale) v`` for one query group."""
    prob = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
    grad_v = prob.transpose(-2, -1) @ grad_out
    grad_s = grad_out @ v.transpose(-2, -1)
    grad_s.sub_((grad_out * out).sum(-1, keepdim=True)).mul_(prob)
    grad_s.mul_(scale)
    return grad_s @ k, grad_s.transpose(-2, -1) @ q, grad_v


def _last_dim_contiguous(x: Tensor) -> Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def _flash_grad(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                grad_out: Tensor,
                scale: float) -> Tuple[Tensor, Tensor, Tensor]:
    """The same gradients through ATen's fused CPU flash backward (it reads
    any strides whose last dim is contiguous)."""
    return _CPU_FLASH_BWD(
        _last_dim_contiguous(grad_out),
        q,
        k,
        v,
        _last_dim_contiguous(out),
        lse,
        0.0,
        False,
        scale=scale)


@torch.library.custom_op(
    _OP_BWD, mutates_args=(), device_types=('cpu', 'cuda'))
def _cp_attention_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor,
                           out: Tensor, lse: Tensor, num_cores: int,
                           scale: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Backward in ``O(NC)`` memory.

    With a log-sum-exp from the CPU forward, ATen's fused flash backward runs
    for both query groups; otherwise the probabilities are recomputed
    analytically (half precision accumulates in float32).
    """
    c = num_cores
    dtype = q.dtype
    fused = lse.numel() > 0 and _CPU_FLASH_BWD is not None
    if fused:
        grad = functools.partial(_flash_grad, scale=scale)
        args_c = (lse[:, :, :c], )
        args_p = (lse[:, :, c:], )
    else:
        if dtype in (torch.float16, torch.bfloat16):
            grad_out, q, k, v, out = (t.float()
                                      for t in (grad_out, q, k, v, out))
        grad = functools.partial(_softmax_grad, scale=scale)
        args_c = args_p = ()

    def run(rows: slice, keys: slice, extra):
        q_, k_, v_, o_, g_ = (q[:, :, rows], k[:, :, keys], v[:, :, keys],
                              out[:, :, rows], grad_out[:, :, rows])
        if fused:
            return grad(q_, k_, v_, o_, *extra, g_)
        return grad(q_, k_, v_, o_, g_)

    gq, gk, gv = run(slice(0, c), slice(None), args_c)
    if q.shape[2] > c:
        gq_p, gk_c, gv_c = run(slice(c, None), slice(0, c), args_p)
        gk[:, :, :c] += gk_c
        gv[:, :, :c] += gv_c
        gq = _cat_tokens(gq, gq_p)
    return tuple(_token_major(g.to(dtype)) for g in (gq, gk, gv))


@_cp_attention_backward.register_fake
def _(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor,
      lse: Tensor, num_cores: int,
      scale: float) -> Tuple[Tensor, Tensor, Tensor]:
    return (_empty_token_major(q, tuple(q.shape)),
            _empty_token_major(k, tuple(k.shape)),
            _empty_token_major(v, tuple(v.shape)))


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, num_cores, scale = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.num_cores = num_cores
    ctx.scale = scale


def _backward(ctx, grad_out: Tensor, _grad_lse: Optional[Tensor]):
    q, k, v, out, lse = ctx.saved_tensors
    gq, gk, gv = _cp_attention_backward(grad_out, q, k, v, out,
                                        lse, ctx.num_cores, ctx.scale)
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
    return _cp_attention(q, k, v, int(num_cores), float(scale))[0]


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
