"""Optimizer wrapper constructors; no weight decay on EAC's own parameters.

Importing this package wraps every optimizer wrapper constructor so that
EAC's core bank, core coordinates and coordinate-update scales get no weight
decay (:mod:`.eac_no_decay`).
"""
from . import eac_no_decay
from .eac_no_decay import eac_no_decay_params
from .layer_decay_constructor import LayerDecayOptimWrapperConstructor

eac_no_decay.apply()

__all__ = ['LayerDecayOptimWrapperConstructor', 'eac_no_decay_params']
