"""Distillation pretraining of EAC students (mmpretrain algorithms)."""
from .eac_distiller import EACDistiller
from .losses import cosine_distill_loss, mse_distill_loss

__all__ = ['EACDistiller', 'cosine_distill_loss', 'mse_distill_loss']
