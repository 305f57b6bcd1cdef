"""mmeac: Elastic Attention Cores (EAC) ViTs for OpenMMLab dense prediction.

Importing :mod:`mmeac` applies the compatibility fixes the released OpenMMLab
stack needs on current PyTorch (:mod:`mmeac.compat`) and registers every mmeac
module in MMEngine's root registries, so that mmseg, mmdet and mmpretrain
configs (whose registries are children of the root) can build them after
``custom_imports=dict(imports=['mmeac'], allow_failed_imports=False)``.
"""
from . import compat  # noqa: F401  (applies the stack fixes on import)
from . import datasets  # noqa: F401  (registers the data transforms)
from . import engine  # noqa: F401  (registers hooks / optimizer constructors)
from . import models  # noqa: F401  (registers the models)
from .version import __version__, version_info

__all__ = ['__version__', 'version_info']
