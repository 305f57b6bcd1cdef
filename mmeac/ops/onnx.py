"""ONNX export of the core-periphery attention operator.

``torch.ops.mmeac.core_periphery_attention`` is translated for the
torch.export-based exporter (``torch.onnx.export(..., dynamo=True)``, the
default of torch >= 2.9) into standard ONNX ops, so the exported model runs
in any ONNX runtime without a custom domain:

* core queries: ``Softmax(q[:C] k^T * scale) v`` over all ``C + N`` keys;
* patch queries: ``Softmax(q[C:] k[:C]^T * scale) v[:C]`` over the cores;
* ``Concat`` of both along the tokens (plus the row log-sum-exp, the op's
  second output, which the exporter drops when nothing reads it).

No patch-to-patch score exists in the graph either: its largest
intermediate is ``N x C`` per head.

Two parts of the EAC backbone have no ONNX form as written, and
:func:`onnx_export_mode` swaps them for equivalent real-valued code while an
export traces the model: the complex-number RoPE (ONNX has no complex
tensors) becomes ``cos`` / ``sin`` tables and a pairwise rotation, and the
CPU kernels (the compiled one included) give way to the plain path. The model's
numbers do not change (the parity tests compare ONNX Runtime with PyTorch).

``onnxscript`` (the exporter's own dependency) is imported only when a
translation table is requested.
"""
import contextlib
import types
from typing import Callable, Dict, Iterator, Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = [
    'onnx_translation_table', 'onnx_export_mode', 'real_rope_tables',
    'apply_real_rope', 'adaptive_avg_pool2d_any_size'
]

_INT64_MAX = 2**63 - 1


def _translation() -> Callable:
    """The onnxscript translation of ``mmeac::core_periphery_attention``."""
    from onnxscript import opset18 as op

    def core_periphery_attention(q, k, v, num_cores: int, scale: float):
        axis = op.Constant(value_ints=[2])
        zero = op.Constant(value_ints=[0])
        cores = op.Constant(value_ints=[num_cores])
        end = op.Constant(value_ints=[_INT64_MAX])
        last = op.Constant(value_ints=[-1])
        s = op.Constant(value_float=scale)
        q_core = op.Slice(q, zero, cores, axis)
        q_patch = op.Slice(q, cores, end, axis)
        k_core = op.Slice(k, zero, cores, axis)
        v_core = op.Slice(v, zero, cores, axis)
        # core queries over every key, patch queries over the core keys
        s_core = op.Mul(
            op.MatMul(q_core, op.Transpose(k, perm=[0, 1, 3, 2])), s)
        s_patch = op.Mul(
            op.MatMul(q_patch, op.Transpose(k_core, perm=[0, 1, 3, 2])), s)
        out = op.Concat(
            op.MatMul(op.Softmax(s_core, axis=-1), v),
            op.MatMul(op.Softmax(s_patch, axis=-1), v_core),
            axis=2)
        lse = op.Concat(
            op.ReduceLogSumExp(s_core, last, keepdims=0),
            op.ReduceLogSumExp(s_patch, last, keepdims=0),
            axis=2)
        return out, lse

    return core_periphery_attention


def onnx_translation_table() -> Dict[Callable, Callable]:
    """``custom_translation_table`` for ``torch.onnx.export(dynamo=True)``.

    Example:
        >>> with onnx_export_mode(model), torch.no_grad():
        ...     torch.onnx.export(model, (x, ), 'eac.onnx', dynamo=True,
        ...                       custom_translation_table=
        ...                       onnx_translation_table())
    """
    import mmeac.ops.core_periphery_attention  # noqa: F401  (registers op)
    return {torch.ops.mmeac.core_periphery_attention.default: _translation()}


def real_rope_tables(rope: nn.Module, coords: Tensor) -> Tensor:
    """Real RoPE tables ``[..., head_dim]``: ``cos`` then ``sin`` of the
    angles that ``rope.tables`` returns as complex ``[..., head_dim / 2]``.
    """
    angles = (coords.unsqueeze(-1).float() * rope.omega).flatten(-2)
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def apply_real_rope(x: Tensor, tables: Tensor) -> Tensor:
    """:func:`mmeac.models.layers.rope.apply_rope` with real tables from
    :func:`real_rope_tables`: ``(a, b) -> (a c - b s, b c + a s)`` on the
    interleaved channel pairs (out of place)."""
    half = tables.shape[-1] // 2
    cos, sin = tables[..., :half], tables[..., half:]
    dtype = x.dtype
    pairs = x.float().unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    out = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1)
    return out.flatten(-2).to(dtype)


def _rotate(x: Tensor, cis: Tensor) -> Tensor:
    return apply_real_rope(x, cis)


def _pair(v) -> Tuple[Optional[int], Optional[int]]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def adaptive_avg_pool2d_any_size(x: Tensor, output_size) -> Tensor:
    """``F.adaptive_avg_pool2d`` written with slices whose bounds follow
    the input size (``floor(i H / s)`` to ``ceil((i + 1) H / s)``), so that
    an export with dynamic height / width stays correct at every size (the
    exporter's own lowering fixes the pooling windows at the traced size).
    """
    h, w = x.shape[-2:]
    oh, ow = _pair(output_size)
    oh = h if oh is None else oh
    ow = w if ow is None else ow
    if (oh, ow) == (1, 1):
        return x.mean(dim=(-2, -1), keepdim=True)
    rows = []
    for i in range(oh):
        # only non-negative integer divisions (an exported floor division
        # of a negative number would truncate instead)
        y0, y1 = (i * h) // oh, ((i + 1) * h + oh - 1) // oh
        cols = [
            x[..., y0:y1, (j * w) // ow:((j + 1) * w + ow - 1) // ow].mean(
                dim=(-2, -1), keepdim=True) for j in range(ow)
        ]
        rows.append(torch.cat(cols, dim=-1))
    return torch.cat(rows, dim=-2)


@contextlib.contextmanager
def onnx_export_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Make an EAC model traceable to ONNX inside the block.

    * every ``AxialRoPE2D`` of ``model`` returns real tables
      (:func:`real_rope_tables`) and does not cache them per size (a
      cached table would be frozen into the graph as a constant);
    * the attention layers rotate with :func:`apply_real_rope`;
    * the plain path replaces the CPU kernels (:func:`plain_path`);
    * ``nn.AdaptiveAvgPool2d`` layers (UperNet's pyramid pooling) pool with
      :func:`adaptive_avg_pool2d_any_size`, correct at any input size.

    Everything is restored on exit.
    """
    from mmeac.models.layers import attention as attention_module
    from mmeac.models.layers.rope import AxialRoPE2D
    from .core_periphery_attention import plain_path
    ropes = [m for m in model.modules() if isinstance(m, AxialRoPE2D)]

    def tables(self, coords):
        return real_rope_tables(self, coords)

    def patch_tables(self, h, w, device, augment=False, generator=None):
        if augment:
            raise RuntimeError('ONNX export traces eval mode only')
        return real_rope_tables(self, self.patch_coords(h, w, device))

    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]

    def pool_forward(self, x):
        return adaptive_avg_pool2d_any_size(x, self.output_size)

    saved = attention_module.apply_rope
    try:
        for pool in pools:
            pool.forward = types.MethodType(pool_forward, pool)
        for rope in ropes:
            rope.tables = types.MethodType(tables, rope)
            rope.patch_tables = types.MethodType(patch_tables, rope)
        attention_module.apply_rope = _rotate
        with plain_path():
            yield model
    finally:
        attention_module.apply_rope = saved
        for rope in ropes:
            for name in ('tables', 'patch_tables'):
                rope.__dict__.pop(name, None)
        for pool in pools:
            pool.__dict__.pop('forward', None)
