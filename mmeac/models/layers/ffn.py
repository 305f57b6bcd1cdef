"""SwiGLU feed-forward network of the EAC blocks."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmeac.ops import HAS_COMPILED_KERNEL

__all__ = ['SwiGLUFFN']


class SwiGLUFFN(nn.Module):
    """``fc2(silu(u) * v)`` with ``(u, v) = fc1(x).chunk(2)``.

    Without autograd the gate is computed in place inside fc1's output; on
    the CPU in float32 with mmeac's compiled kernels, fc1 then runs without
    its bias and one pass adds the bias and applies the gate
    (``mmeac_C::swiglu_``).

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
        if torch.is_grad_enabled():
            u, v = self.fc1(x).chunk(2, dim=-1)
            return self.fc2(F.silu(u) * v)
        # (CPU float32 only; under CPU autocast fc1 would not produce the
        # float32 the kernel takes)
        if (self.fc1.bias is not None
                and HAS_COMPILED_KERNEL and all(
                    t.device.type == 'cpu' and t.dtype == torch.float32
                    for t in (x, self.fc1.weight, self.fc1.bias))
                and not torch.is_autocast_enabled('cpu')):
            h = F.linear(x, self.fc1.weight)
            torch.ops.mmeac_C.swiglu_(h, self.fc1.bias)
            return self.fc2(h[..., :self.hidden_dims])
        # inference: the gate is computed inside fc1's output buffer
        u, v = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.silu(u, inplace=True).mul_(v))


if HAS_COMPILED_KERNEL:

    @torch.library.register_fake('mmeac_C::swiglu_')
    def _swiglu_fake(h: Tensor, bias: Tensor) -> None:
        """In place: nothing new to describe (lets torch.compile trace the
        inference FFN)."""
        return None
