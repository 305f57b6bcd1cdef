"""Building blocks of the EAC backbone."""
from .attention import CorePeripheryAttention, DenseRoPEAttention
from .block import DropPath, EACBlock
from .ffn import SwiGLUFFN
from .rope import AxialRoPE2D, apply_rope, farthest_point_coords

__all__ = [
    'CorePeripheryAttention', 'DenseRoPEAttention', 'DropPath', 'EACBlock',
    'SwiGLUFFN', 'AxialRoPE2D', 'apply_rope', 'farthest_point_coords'
]
