"""Engine components of mmeac (optimizer constructors, hooks)."""
from .optimizers import LayerDecayOptimWrapperConstructor
from .randomness_hook import EACRandomnessHook, add_randomness_hook

__all__ = [
    'LayerDecayOptimWrapperConstructor', 'EACRandomnessHook',
    'add_randomness_hook'
]
