"""mmeac models: backbones, layers, necks, heads and distillers."""
from . import distillers, heads, layers, necks  # noqa: F401
from .backbones import EACViT

__all__ = ['EACViT']
