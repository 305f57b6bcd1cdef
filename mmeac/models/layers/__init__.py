"""Building blocks of the EAC backbone."""
from .attention import CorePeripheryAttention, DenseRoPEAttention
from .block import DropPath, EACBlock
from .ffn import InplaceSwiGLUFFN, SwiGLUFFN
from .rope import AxialRoPE2D, apply_rope, farthest_point_coords

__all__ = [
    'CorePeripheryAttention', 'DenseRoPEAttention', 'DropPath', 'EACBlock',
    'SwiGLUFFN', 'InplaceSwiGLUFFN', 'AxialRoPE2D', 'apply_rope',
    'farthest_point_coords'
]
