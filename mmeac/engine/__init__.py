"""Engine components of mmeac (optimizer constructors, hooks)."""
from .optimizers import LayerDecayOptimWrapperConstructor

__all__ = ['LayerDecayOptimWrapperConstructor']
