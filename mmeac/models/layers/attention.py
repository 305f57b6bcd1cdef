"""Attention modules of the EAC backbone, selectable from configs.

``CorePeripheryAttention`` is the EAC attention; ``DenseRoPEAttention`` is its
dense twin (every token attends to every token), used as the baseline in the
benchmarks. Both are registered in MMEngine's root ``MODELS`` registry and
differ only in :meth:`attend`.
"""
import math
from typing import Tuple

import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from mmeac.ops import core_periphery_attention
from .rope import apply_rope

__all__ = ['CorePeripheryAttention', 'DenseRoPEAttention']


@MODELS.register_module()
class CorePeripheryAttention(nn.Module):
    """Multi-head core-periphery attention with 2D RoPE.

    q, k and v come from one fused linear layer (the converter fuses the
    authors' separate projections).

    Args:
        embed_dims (int): Channels D.
        num_heads (int): Heads; ``D / num_heads`` must be divisible by 4.
        qkv_bias (bool): Bias in the q/k/v projection. Defaults to True.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by '
                             f'num_heads {num_heads}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dim = embed_dims // num_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def _qkv(self, x: Tensor, rope: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Roped q, k and v, each ``[B, heads, L, head_dim]`` (views)."""
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim))
        # one rotation pass over q and k together: [B, L, 2, heads, d]
        qk = apply_rope(qkv[:, :, :2], rope[:, :, None, None])
        q, k = qk.transpose(1, 3).unbind(2)
        return q, k, qkv[:, :, 2].transpose(1, 2)

    def attend(self, q: Tensor, k: Tensor, v: Tensor,
               num_cores: int) -> Tensor:
        """Core-periphery attention of ``[B, heads, L, head_dim]`` q, k, v
        (:func:`mmeac.ops.core_periphery_attention`)."""
        return core_periphery_attention(q, k, v, num_cores, self.scale)

    def forward(self, x: Tensor, num_cores: int, rope: Tensor) -> Tensor:
        """Args:
            x (Tensor): ``[B, C + N, D]``, cores first.
            num_cores (int): C.
            rope (Tensor): Complex RoPE rotations ``[B, C + N, d / 2]``.
        """
        q, k, v = self._qkv(x, rope)
        out = self.attend(q, k, v, num_cores)
        return self.proj(out.transpose(1, 2).flatten(2))


@MODELS.register_module()
class DenseRoPEAttention(CorePeripheryAttention):
    """The dense twin: the same layers, every token attends to every token.

    Costs ``(C + N)^2`` query-key pairs per layer; the benchmarks compare EAC
    against it to isolate what the core-periphery pattern saves.
    """

    def attend(self, q: Tensor, k: Tensor, v: Tensor,
               num_cores: int) -> Tensor:
        """Attention of every token to every token."""
        return F.scaled_dot_product_attention(q, k, v, scale=self.scale)
