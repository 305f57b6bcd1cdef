"""SwiGLU feed-forward networks of the EAC blocks."""
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

__all__ = ['SwiGLUFFN', 'InplaceSwiGLUFFN']


@MODELS.register_module()
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


@MODELS.register_module()
class InplaceSwiGLUFFN(SwiGLUFFN):
    """:class:`SwiGLUFFN` that gates in place when autograd is off.

    Under ``torch.no_grad`` / ``torch.inference_mode`` the gate
    ``silu(u) * v`` is written over ``u`` in ``fc1``'s output instead of
    into two new ``[tokens, h]`` tensors, the largest activations of the
    network: EAC-B's forward at 1024 px then holds 128 instead of 181 MiB
    (``tests/test_eac_vit.py`` measures both side by side). The gate reaches
    ``fc2`` as a strided view, so outputs differ from :class:`SwiGLUFFN`'s
    in the last bits (2e-6 of values up to 5 at 1024 px). While autograd
    records (training), it is :class:`SwiGLUFFN`.
    """

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            return super().forward(x)
        u, v = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.silu(u, inplace=True).mul_(v))
