"""Engine components of mmeac (optimizer constructors, hooks)."""
from .hooks import AtomicLocalBackend, CheckpointAdaptHook, SafeCheckpointHook
from .optimizers import LayerDecayOptimWrapperConstructor

__all__ = [
    'AtomicLocalBackend', 'CheckpointAdaptHook',
    'LayerDecayOptimWrapperConstructor', 'SafeCheckpointHook'
]
