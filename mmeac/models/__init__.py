"""mmeac models: backbones, layers, necks and heads."""
from . import heads, layers, necks  # noqa: F401
from .backbones import EACViT
from .distillers import EACDistiller

__all__ = ['EACViT', 'EACDistiller']
