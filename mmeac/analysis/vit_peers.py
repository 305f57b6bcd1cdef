"""ViTDet / SAM-style windowed ViT peer for the benchmarks.

mmpretrain's :class:`ViTSAM` is the SAM image encoder (ViTDet's backbone):
14 x 14 window attention, global attention in four blocks and decomposed
relative-position terms added to every attention score. Its ``Attention``
writes the scores out (``q @ k^T``, then softmax). :class:`FusedViTSAM`
is the same network with the attention computed by
``F.scaled_dot_product_attention``, the relative-position terms passed as
the additive mask (as timm's ViT-SAM does): the windowed ViT-B as fast as
PyTorch makes it. Importing this module imports mmpretrain.
"""
import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.vit_sam import Attention, ViTSAM, get_rel_pos

__all__ = ['FusedRelPosAttention', 'FusedViTSAM']


class FusedRelPosAttention(Attention):
    """SAM attention through ``F.scaled_dot_product_attention``.

    Same parameters and outputs as :class:`Attention` (up to float
    rounding); the relative-position terms become the attention mask.
    """

    def rel_pos_bias(self, q: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Additive ``[B, heads, h*w, h*w]`` bias of the decomposed
        relative positions for queries ``q`` (``[B, heads, h*w, C]``)."""
        rel_h = get_rel_pos(h, h, self.rel_pos_h)  # [h, h, C]
        rel_w = get_rel_pos(w, w, self.rel_pos_w)  # [w, w, C]
        q = q.unflatten(2, (h, w))
        bias_h = torch.einsum('bnhwc,hkc->bnhwk', q, rel_h)
        bias_w = torch.einsum('bnhwc,wkc->bnhwk', q, rel_w)
        bias = bias_h[..., :, None] + bias_w[..., None, :]
        return bias.flatten(-2).flatten(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.rel_pos_bias(q, h, w) if self.use_rel_pos else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


class FusedViTSAM(ViTSAM):
    """mmpretrain's :class:`ViTSAM` with :class:`FusedRelPosAttention`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for layer in self.layers:
            # same parameters, only ``forward`` differs
            layer.attn.__class__ = FusedRelPosAttention
