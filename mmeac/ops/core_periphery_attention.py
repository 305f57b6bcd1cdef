"""Core-periphery attention as a PyTorch custom operator.

The sequence is ``[cores; patches]`` with ``num_cores`` (C) core tokens first
and N patch tokens after them. Core queries attend to every key; patch
queries attend to the C core keys only, so no patch-to-patch score is ever
formed and one layer costs ``2NC + C^2`` query-key pairs instead of
``(N + C)^2``.

The operator is ``torch.ops.mmeac.core_periphery_attention(q, k, v,
num_cores, scale) -> (out, lse)``; :func:`core_periphery_attention` is its
Python entry point. Its structure:

* one plain implementation for every device (:func:`forward_plain`,
  :func:`backward_plain`): per query group the softmax attention written
  out, keeping each row's log-sum-exp, and the analytic backward that
  recomputes the probabilities from it. Nothing of size ``(N + C)^2``
  exists in either direction;
* CPU kernels, registered once at import: the forward of mmeac's compiled
  extension ``mmeac._C`` when it was built (:func:`forward_cpu`; float32
  inputs, the plain path for other dtypes) and ATen's fused flash-attention
  backward (:func:`backward_cpu`). ``HAS_COMPILED_KERNEL`` says whether the
  extension loaded;
* a fake kernel, so ``torch.compile(fullgraph=True)`` and ``torch.export``
  trace through it;
* outputs stored token-major (``[B, L, heads, d]`` in memory, returned as
  the ``[B, heads, L, d]`` view), so that merging the heads for the output
  projection needs no copy;
* autograd through a second custom operator,
  ``mmeac::core_periphery_attention_backward``.

:func:`core_periphery_attention_reference` is the dense masked-attention
definition the operator is tested against. ``docs/op_paths.md`` lists the
paths and the measurements that keep the CPU kernels.
"""
import contextlib
import importlib
import math
from typing import Callable, Iterator, Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    'core_periphery_attention', 'core_periphery_attention_reference',
    'core_periphery_mask', 'HAS_COMPILED_KERNEL', 'COMPILED_KERNEL_ERROR'
]

Grads = Tuple[Tensor, Tensor, Tensor]


def _load_compiled_kernels() -> Optional[str]:
    """Import ``mmeac._C`` (its load registers ``mmeac_C::*``); why it
    failed, or None."""
    try:
        importlib.import_module('mmeac._C')
    except (ImportError, OSError) as exc:
        return f'{type(exc).__name__}: {exc}'
    return None


#: Why ``mmeac._C`` did not load (None when it did).
COMPILED_KERNEL_ERROR = _load_compiled_kernels()
#: Whether the CPU forward runs mmeac's compiled kernel (decided at import).
HAS_COMPILED_KERNEL = COMPILED_KERNEL_ERROR is None


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


# ------------------------------------------------------------------ layout
def _token_major(x: Tensor) -> Tensor:
    """``x`` ``[B, heads, L, ...]`` stored token-major (``[B, L, heads, ...]``
    in memory), returned as the same ``[B, heads, L, ...]`` view."""
    return x.transpose(1, 2).contiguous().transpose(1, 2)


def _cat_tokens(core: Tensor, patch: Tensor) -> Tensor:
    """Concatenate the two query groups along the token dim (2) into
    token-major storage."""
    return torch.cat(
        [core.transpose(1, 2), patch.transpose(1, 2)], dim=1).transpose(1, 2)


def _empty_token_major(like: Tensor,
                       shape: Tuple[int, ...],
                       dtype: Optional[torch.dtype] = None) -> Tensor:
    """Uninitialised ``shape`` (``[B, heads, L, ...]``) in token-major
    storage, as the kernels return it (for the fake kernels)."""
    swapped = (shape[0], shape[2], shape[1]) + tuple(shape[3:])
    return like.new_empty(swapped, dtype=dtype).transpose(1, 2)


def _upcast(*tensors: Tensor) -> Tuple[Tensor, ...]:
    """Half precision to float32 (the plain path computes in float32 or
    float64)."""
    return tuple(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
                 for t in tensors)


# -------------------------------------------------------------- plain path
def _attend(q: Tensor, k: Tensor, v: Tensor,
            scale: float) -> Tuple[Tensor, Tensor]:
    """``softmax(q k^T scale) v`` of one query group and each query row's
    log-sum-exp of the scores."""
    # in place: no autograd runs inside the op's kernels
    scores = (q @ k.transpose(-2, -1)).mul_(scale)
    row_max = scores.amax(-1, keepdim=True)
    weights = scores.sub_(row_max).exp_()
    row_sum = weights.sum(-1, keepdim=True)
    lse = (row_max + row_sum.log()).squeeze(-1)
    return (weights @ v).div_(row_sum), lse


def _attend_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor,
                     out: Tensor, lse: Tensor, scale: float) -> Grads:
    """Gradients of :func:`_attend` for one query group, the probabilities
    recomputed from the log-sum-exp."""
    scores = (q @ k.transpose(-2, -1)).mul_(scale)
    prob = scores.sub_(lse.unsqueeze(-1)).exp_()
    grad_v = prob.transpose(-2, -1) @ grad_out
    # softmax backward, in place in dP: dS = P * (dP - rowsum(dO * O)),
    # times the score scale
    grad_scores = grad_out @ v.transpose(-2, -1)
    grad_scores.sub_((grad_out * out).sum(-1, keepdim=True))
    grad_scores.mul_(prob).mul_(scale)
    return (grad_scores @ k, grad_scores.transpose(-2, -1) @ q, grad_v)


def forward_plain(q: Tensor, k: Tensor, v: Tensor, num_cores: int,
                  scale: float) -> Tuple[Tensor, Tensor]:
    """The operator on any device: core queries against all keys, patch
    queries against the core keys; half precision computes in float32.

    Returns:
        tuple[Tensor, Tensor]: ``out`` (``q``'s dtype) and the row
        log-sum-exp ``lse`` ``[B, heads, L]`` (float32, float64 for float64
        inputs), both token-major.
    """
    _check_inputs(q, k, v, num_cores)
    c = num_cores
    dtype = q.dtype
    q, k, v = _upcast(q, k, v)
    out, lse = _attend(q[:, :, :c], k, v, scale)
    if q.shape[2] > c:
        out_p, lse_p = _attend(q[:, :, c:], k[:, :, :c], v[:, :, :c], scale)
        out, lse = _cat_tokens(out, out_p), _cat_tokens(lse, lse_p)
    else:
        out, lse = _token_major(out), _token_major(lse)
    return out.to(dtype), lse


def _backward_by_group(attend_backward: Callable[..., Grads], grad_out: Tensor,
                       q: Tensor, k: Tensor, v: Tensor, out: Tensor,
                       lse: Tensor, num_cores: int, scale: float) -> Grads:
    """Run ``attend_backward`` for the core and the patch query groups and
    sum the core keys' and values' gradients of both."""
    c = num_cores

    def group(rows: slice, keys: slice) -> Grads:
        return attend_backward(grad_out[:, :, rows], q[:, :, rows],
                               k[:, :, keys], v[:, :, keys], out[:, :, rows],
                               lse[:, :, rows], scale)

    grad_q, grad_k, grad_v = group(slice(0, c), slice(None))
    if q.shape[2] > c:
        grad_q_p, grad_k_c, grad_v_c = group(slice(c, None), slice(0, c))
        grad_k[:, :, :c] += grad_k_c
        grad_v[:, :, :c] += grad_v_c
        grad_q = _cat_tokens(grad_q, grad_q_p)
    return grad_q, grad_k, grad_v


def backward_plain(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor,
                   out: Tensor, lse: Tensor, num_cores: int,
                   scale: float) -> Grads:
    """Gradients for q, k and v (token-major, the inputs' dtype) on any
    device; half precision computes in float32."""
    dtype = q.dtype
    grads = _backward_by_group(_attend_backward,
                               *_upcast(grad_out, q, k, v, out), lse,
                               num_cores, scale)
    return tuple(_token_major(g.to(dtype)) for g in grads)


# ---------------------------------------------------------- the operators
@torch.library.custom_op('mmeac::core_periphery_attention', mutates_args=())
def _cp_attention(q: Tensor, k: Tensor, v: Tensor, num_cores: int,
                  scale: float) -> Tuple[Tensor, Tensor]:
    return forward_plain(q, k, v, num_cores, scale)


@_cp_attention.register_fake
def _(q: Tensor, k: Tensor, v: Tensor, num_cores: int,
      scale: float) -> Tuple[Tensor, Tensor]:
    torch._check(q.dim() == 4)
    out = _empty_token_major(q, tuple(q.shape[:-1]) + (v.shape[-1], ))
    lse_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
    return out, _empty_token_major(q, tuple(q.shape[:3]), dtype=lse_dtype)


@torch.library.custom_op(
    'mmeac::core_periphery_attention_backward', mutates_args=())
def _cp_attention_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor,
                           out: Tensor, lse: Tensor, num_cores: int,
                           scale: float) -> Grads:
    return backward_plain(grad_out, q, k, v, out, lse, num_cores, scale)


@_cp_attention_backward.register_fake
def _(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor,
      lse: Tensor, num_cores: int, scale: float) -> Grads:
    return tuple(_empty_token_major(t, tuple(t.shape)) for t in (q, k, v))


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, num_cores, scale = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)
    ctx.num_cores = num_cores
    ctx.scale = scale


def _backward(ctx, grad_out: Tensor, _grad_lse: Optional[Tensor]):
    q, k, v, out, lse = ctx.saved_tensors
    grad_q, grad_k, grad_v = _cp_attention_backward(grad_out, q, k, v, out,
                                                    lse, ctx.num_cores,
                                                    ctx.scale)
    return grad_q, grad_k, grad_v, None, None


_cp_attention.register_autograd(_backward, setup_context=_setup_context)


# ------------------------------------------------------------- CPU kernels
def forward_cpu(q: Tensor, k: Tensor, v: Tensor, num_cores: int,
                scale: float) -> Tuple[Tensor, Tensor]:
    """mmeac's compiled CPU kernel (``mmeac_C::cp_attention_fwd``: both
    query groups straight into the token-major output) for float32 inputs
    with contiguous last dims; :func:`forward_plain` for the rest."""
    _check_inputs(q, k, v, num_cores)
    if all(t.dtype == torch.float32 and t.stride(-1) == 1 for t in (q, k, v)):
        return torch.ops.mmeac_C.cp_attention_fwd(q, k, v, num_cores, scale)
    return forward_plain(q, k, v, num_cores, scale)


def _contiguous_last_dim(x: Tensor) -> Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def _flash_attend_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor,
                           out: Tensor, lse: Tensor, scale: float) -> Grads:
    """:func:`_attend_backward` by ATen's fused CPU flash-attention backward
    (reads any strides whose last dim is contiguous)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
        _contiguous_last_dim(grad_out),
        _contiguous_last_dim(q),
        _contiguous_last_dim(k),
        _contiguous_last_dim(v),
        _contiguous_last_dim(out),
        lse,
        0.0,
        False,
        scale=scale)


def backward_cpu(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor,
                 out: Tensor, lse: Tensor, num_cores: int,
                 scale: float) -> Grads:
    """:func:`backward_plain` through ATen's fused CPU flash backward (which
    needs one head size for q, k and v; :func:`backward_plain` otherwise)."""
    if v.shape[-1] != q.shape[-1]:
        return backward_plain(grad_out, q, k, v, out, lse, num_cores, scale)
    grads = _backward_by_group(_flash_attend_backward, grad_out, q, k, v, out,
                               lse, num_cores, scale)
    return tuple(_token_major(g) for g in grads)


if HAS_COMPILED_KERNEL:
    _cp_attention.register_kernel('cpu')(forward_cpu)
_cp_attention_backward.register_kernel('cpu')(backward_cpu)


@contextlib.contextmanager
def plain_path() -> Iterator[None]:
    """Inside the block the operators run their plain implementation on the
    CPU too (the CPU kernels disabled): for comparisons in tests and
    benchmarks."""
    with contextlib.ExitStack() as stack:
        if HAS_COMPILED_KERNEL:
            stack.enter_context(_cp_attention.set_kernel_enabled('cpu', False))
        stack.enter_context(
            _cp_attention_backward.set_kernel_enabled('cpu', False))
        yield


# ------------------------------------------------------------------ public
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


def core_periphery_mask(num_cores: int,
                        seq_len: int,
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
    """The definition: dense attention with the core-periphery mask.

    Materialises the full ``(C + N)^2`` score matrix: for tests and
    analysis on small inputs only.
    """
    _check_inputs(q, k, v, num_cores)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    mask = core_periphery_mask(num_cores, q.shape[2], q.device)
    scores = scores.masked_fill(~mask, float('-inf'))
    return torch.softmax(scores, dim=-1) @ v
