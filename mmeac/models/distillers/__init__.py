"""Distillation pretraining of EAC students (mmpretrain algorithms).

:class:`EACDistiller` subclasses mmpretrain's ``BaseSelfSupervisor``, and
importing it imports ``mmpretrain.models`` (and through it mmdet). So that
``import mmeac`` stays light, the root ``MODELS`` first holds a builder under
that name (as for :mod:`mmeac.models.heads`), which imports the class on the
first build or preflight; the import then registers the class in its place.
"""
from mmengine.registry import MODELS

from .losses import cosine_distill_loss, mse_distill_loss

__all__ = ['EACDistiller', 'cosine_distill_loss', 'mse_distill_loss']


def _build_eac_distiller(*args, **kwargs):
    """Import :class:`EACDistiller` and build it (first build only)."""
    from .eac_distiller import EACDistiller
    return EACDistiller(*args, **kwargs)


def _preflight(cfg: dict) -> None:
    """:meth:`EACDistiller.preflight`, for the tools' checks."""
    from .eac_distiller import EACDistiller
    EACDistiller.preflight(cfg)


_build_eac_distiller.preflight = _preflight

if 'EACDistiller' not in MODELS.module_dict:
    MODELS.register_module(name='EACDistiller', module=_build_eac_distiller)


def __getattr__(name: str):
    if name == 'EACDistiller':
        from .eac_distiller import EACDistiller
        return EACDistiller
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
