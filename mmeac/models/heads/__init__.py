"""mmeac.models.heads: decode heads (registered in MMEngine's root MODELS).

:class:`LinearProbeSegHead` subclasses mmseg's ``BaseDecodeHead``, and
importing it imports ``mmseg.models`` (and through it mmdet and mmpretrain).
So that ``import mmeac`` stays light, the root ``MODELS`` first holds a
builder under that name, which imports the head on the first build; the
import then registers the class itself in its place. The class is also
importable from here, ``from mmeac.models.heads import LinearProbeSegHead``
(imported on first access).
"""
from mmengine.registry import MODELS

__all__ = ['LinearProbeSegHead']


def _build_linear_probe_seg_head(*args, **kwargs):
    """Import :class:`LinearProbeSegHead` and build it (first build only)."""
    from .linear_probe_seg_head import LinearProbeSegHead
    return LinearProbeSegHead(*args, **kwargs)


if 'LinearProbeSegHead' not in MODELS.module_dict:
    MODELS.register_module(
        name='LinearProbeSegHead', module=_build_linear_probe_seg_head)


def __getattr__(name: str):
    if name == 'LinearProbeSegHead':
        from .linear_probe_seg_head import LinearProbeSegHead
        return LinearProbeSegHead
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
