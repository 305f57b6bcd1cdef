"""Pre-norm EAC transformer block."""
import copy
from typing import Optional

import torch
import torch.utils.checkpoint as cp
from mmengine.registry import MODELS
from torch import Tensor, nn

__all__ = ['EACBlock', 'DropPath']


class DropPath(nn.Module):
    """Stochastic depth per sample (identity when ``p == 0`` or in eval).

    Args:
        p (float): Drop probability. Defaults to 0.
        generator (torch.Generator, optional): CPU generator the masks are
            drawn from (``EACViT`` gives its blocks its per-rank augmentation
            generator); the global RNG when None or while ``torch.compile``
            traces.
    """

    def __init__(self,
                 p: float = 0.0,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.p = p
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        shape = (x.shape[0], ) + (1, ) * (x.dim() - 1)
        if self.generator is None or torch.compiler.is_compiling():
            keep = x.new_empty(shape).bernoulli_(1 - self.p)
        else:
            keep = torch.empty(shape).bernoulli_(
                1 - self.p, generator=self.generator).to(x)
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
        ffn_cfg (dict, optional): SwiGLU FFN built from ``MODELS``; defaults
            to ``dict(type='InplaceSwiGLUFFN')`` (:class:`SwiGLUFFN` with an
            in-place gate when autograd is off).
        drop_path (float): Stochastic depth rate. Defaults to 0.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-5.
        with_cp (bool): Activation checkpointing. Defaults to False.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float,
                 attn_cfg: Optional[dict] = None,
                 ffn_cfg: Optional[dict] = None,
                 drop_path: float = 0.0,
                 norm_eps: float = 1e-5,
                 with_cp: bool = False) -> None:
        super().__init__()
        attn_cfg = copy.deepcopy(
            attn_cfg or dict(type='CorePeripheryAttention'))
        attn_cfg.update(embed_dims=embed_dims, num_heads=num_heads)
        self.ln1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = MODELS.build(attn_cfg)
        self.ln2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        ffn_cfg = copy.deepcopy(ffn_cfg or dict(type='InplaceSwiGLUFFN'))
        ffn_cfg.update(
            embed_dims=embed_dims, hidden_dims=int(embed_dims * mlp_ratio))
        self.ffn = MODELS.build(ffn_cfg)
        self.drop_path = DropPath(drop_path)
        self.with_cp = with_cp

    def _forward(self, x: Tensor, num_cores: int, rope: Tensor) -> Tensor:
        # under autocast the branches come out of 16-bit matmuls and the
        # sums promote them: the residual stream stays float32, as in the
        # authors' model
        x = x + self.drop_path(self.attn(self.ln1(x), num_cores, rope))
        return x + self.drop_path(self.ffn(self.ln2(x)))

    def _forward_from(self, x: Tensor, num_cores: int, rope: Tensor,
                      gen_state: Optional[Tensor]) -> Tensor:
        """:meth:`_forward` with the drop-path generator at ``gen_state``,
        so that the checkpointed recomputation draws the same masks."""
        if gen_state is not None:
            self.drop_path.generator.set_state(gen_state)
        return self._forward(x, num_cores, rope)

    def forward(self, x: Tensor, num_cores: int, rope: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            gen = self.drop_path.generator
            gen_state = (
                gen.get_state() if gen is not None and self.training
                and self.drop_path.p > 0 else None)
            return cp.checkpoint(
                self._forward_from,
                x,
                num_cores,
                rope,
                gen_state,
                use_reentrant=False)
        return self._forward(x, num_cores, rope)
