"""mmeac.models.heads: decode heads (registered in MMEngine's root MODELS)."""
from .linear_probe_seg_head import LinearProbeSegHead

__all__ = ['LinearProbeSegHead']
