"""Backbones of mmeac."""
from .eac_vit import CoreCoordUpdate, EACViT
from .veca_checkpoint import (ARCH_ZOO, convert_veca_checkpoint,
                              convert_veca_state_dict,
                              veca_arch_from_checkpoint)

__all__ = [
    'EACViT', 'CoreCoordUpdate', 'ARCH_ZOO', 'convert_veca_checkpoint',
    'convert_veca_state_dict', 'veca_arch_from_checkpoint'
]
