"""Pre-norm EAC transformer block."""
import copy
from typing import Optional

import torch
import torch.utils.checkpoint as cp
from mmengine.registry import MODELS
from torch import Tensor, nn

from .ffn import SwiGLUFFN

__all__ = ['EACBlock', 'DropPath']


class DropPath(nn.Module):
    """Stochastic depth per sample (identity when ``p == 0`` or in eval)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0], ) + (1, ) * (x.dim() - 1))
        keep.bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)

    def extra_repr(self) -> str:
        return f'p={self.p}'


class EACBlock(nn.Module):
    """``x + Attn(LN(x))`` then ``x + FFN(LN(x))``.

    Args:
        embed_dims (int): Channels D.
        num_heads (int): Attention heads.
        mlp_ratio (float): SwiGLU hidden size is ``int(D * mlp_ratio)``.
        attn_cfg (dict, optional): Attention built from ``MODELS``; defaults
            to ``dict(type='CorePeripheryAttention')``.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-5.
        with_cp (bool): Activation checkpointing. Defaults to False.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float,
                 attn_cfg: Optional[dict] = None,
                 drop_path: float = 0.0,
                 norm_eps: float = 1e-5,
                 with_cp: bool = False) -> None:
        super().__init__()
        attn_cfg = copy.deepcopy(attn_cfg or dict(type='CorePeripheryAttention'))
        attn_cfg.update(embed_dims=embed_dims, num_heads=num_heads)
        self.ln1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = MODELS.build(attn_cfg)
        self.ln2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.ffn = SwiGLUFFN(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path)
        self.with_cp = with_cp

    def _forward(self, x: Tensor, num_cores: int,
                 rope: Tensor) -> Tensor:
        if not torch.is_grad_enabled():
            # inference: add the residual into the branch's fresh output
            # rather than allocating a third tensor
            x = self.drop_path(self.attn(self.ln1(x), num_cores,
                                         rope)).add_(x)
            return self.drop_path(self.ffn(self.ln2(x))).add_(x)
        x = x + self.drop_path(self.attn(self.ln1(x), num_cores, rope))
        return x + self.drop_path(self.ffn(self.ln2(x)))

    def forward(self, x: Tensor, num_cores: int,
                rope: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(
                self._forward, x, num_cores, rope, use_reentrant=False)
        return self._forward(x, num_cores, rope)
