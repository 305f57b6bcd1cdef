"""Hooks of mmeac (registered in MMEngine's root ``HOOKS`` registry)."""
from .checkpoint_adapt_hook import CheckpointAdaptHook
from .safe_checkpoint_hook import AtomicLocalBackend, SafeCheckpointHook

__all__ = ['AtomicLocalBackend', 'CheckpointAdaptHook', 'SafeCheckpointHook']
