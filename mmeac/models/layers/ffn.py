"""SwiGLU feed-forward network of the EAC blocks."""
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
        self.hidden_dims = hidden_dims
        self.fc1 = nn.Linear(embed_dims, 2 * hidden_dims)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        u, v = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.silu(u) * v)
