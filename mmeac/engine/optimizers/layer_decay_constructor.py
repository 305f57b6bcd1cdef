"""Layer-wise lr decay driven by the backbone's ``get_layer_depth``."""
from typing import List, Optional, Sequence

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

__all__ = ['LayerDecayOptimWrapperConstructor']


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Scale each parameter's lr by ``rate ** (max_depth - depth)``.

    The depth comes from ``model.backbone.get_layer_depth(name, 'backbone.')``
    (as mmpretrain backbones provide it), so any task (mmseg, mmdet,
    mmpretrain) gets the same decay; parameters outside the backbone (necks,
    heads) sit at the top depth and keep the base lr. One-dimensional
    tensors (norms, biases, ``alpha``) and the names in ``no_decay_names``
    get no weight decay.

    ``paramwise_cfg`` keys:
        - ``layer_decay_rate`` (float): decay per depth. Defaults to 1.0.
        - ``no_decay_names`` (Sequence[str]): substrings of parameter names
          without weight decay. Defaults to the EAC core bank.
        - ``backbone`` (str): attribute holding the backbone. Defaults to
          ``'backbone'``.

    Example:
        >>> optim_wrapper = dict(
        ...     type='OptimWrapper',
        ...     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        ...     constructor='LayerDecayOptimWrapperConstructor',
        ...     paramwise_cfg=dict(layer_decay_rate=0.65))
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        self.layer_decay_rate = float(
            paramwise_cfg.get('layer_decay_rate', 1.0))
        self.no_decay_names: Sequence[str] = tuple(
            paramwise_cfg.get('no_decay_names',
                              ('core_chunks', 'core_coord_chunks')))
        self.backbone_attr = paramwise_cfg.get('backbone', 'backbone')
        if not 0 < self.layer_decay_rate <= 1:
            raise ValueError('layer_decay_rate must be in (0, 1], got '
                             f'{self.layer_decay_rate}')
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(self, params: List[dict], module: nn.Module,
                   **kwargs) -> None:
        backbone = getattr(module, self.backbone_attr, None)
        get_depth = getattr(backbone, 'get_layer_depth', None)
        if get_depth is None:
            raise ValueError(f'LayerDecayOptimWrapperConstructor needs '
                             f'model.{self.backbone_attr}.get_layer_depth; '
                             f'{type(backbone).__name__} has none')
        prefix = f'{self.backbone_attr}.'
        base_wd = self.base_wd or 0.0
        groups = {}
        for name, param in module.named_parameters():
            depth, total = get_depth(name, prefix)
            no_decay = param.ndim <= 1 or any(k in name
                                              for k in self.no_decay_names)
            key = (depth, no_decay, param.requires_grad)
            if key not in groups:
                scale = self.layer_decay_rate**(total - 1 - depth)
                groups[key] = dict(
                    params=[],
                    lr=self.base_lr * scale,
                    weight_decay=0.0 if no_decay else base_wd,
                    layer_depth=depth,
                    lr_scale=scale)
            groups[key]['params'].append(param)
        params.extend(groups[k] for k in sorted(groups))
        print_log(
            f'layer decay {self.layer_decay_rate}: {len(groups)} param '
            'groups',
            logger='current')
