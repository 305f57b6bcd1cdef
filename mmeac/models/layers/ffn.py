"""SwiGLU feed-forward network of the EAC blocks."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['SwiGLUFFN']


class SwiGLUFFN(nn.Module):
    """``fc2(silu(u) * v)`` with ``(u, v) = fc1(x).chunk(2)``.

    Args:
        embed_dims (int): Input and output channels D.
        hidden_dims (int): h; ``fc1`` maps D to ``2h``.
    """

    def __init__(self, embed_dims: int, hidden_dims: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, 2 * hidden_dims)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        u, v = self.fc1(x).chunk(2, dim=-1)
        # without autograd the gate is computed inside fc1's output buffer
        gate = F.silu(u, inplace=not torch.is_grad_enabled())
        return self.fc2(gate.mul_(v))
