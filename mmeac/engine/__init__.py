"""Engine components of mmeac (optimizer constructors, hooks)."""
from .hooks import AtomicLocalBackend, CheckpointAdaptHook, SafeCheckpointHook
from .optimizers import LayerDecayOptimWrapperConstructor
from .randomness_hook import EACRandomnessHook, add_randomness_hook

__all__ = [
    'AtomicLocalBackend', 'CheckpointAdaptHook', 'EACRandomnessHook',
    'LayerDecayOptimWrapperConstructor', 'SafeCheckpointHook',
    'add_randomness_hook'
]
