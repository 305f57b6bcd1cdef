"""No weight decay on EAC's own parameters, under every optimizer constructor.

EAC adds parameters a plain ViT does not have: the core bank
(``core_chunks``), the core coordinates (``core_coord_chunks``) and the
coordinate-update scales (``coord_updates.*.alpha``). They are embeddings and
gates, not weights, and get no weight decay (as ``pos_embed`` and
``cls_token`` do not). Upstream configs name only their own no-decay keys
(``pos_embed``, ``cls_token``, ``norm``), so a drop-in swap would decay them.

:func:`apply` wraps :meth:`DefaultOptimWrapperConstructor.__call__`, which
every constructor of mmengine, mmseg, mmdet and mmpretrain (and mmeac's)
inherits: after the optimizer is built, those parameters are moved out of any
param group with non-zero weight decay into a copy of that group (same lr,
lr scale, momentum ...) with ``weight_decay=0``. A ``custom_keys`` entry of
``paramwise_cfg`` that names such a parameter itself (``'core_chunks'``, not
a whole module such as ``'backbone'``) and sets ``decay_mult`` is left as
the user set it.

It also lets mmseg's and mmdet's ``LearningRateDecayOptimizerConstructor``
(which know only ConvNeXt, BEiT and MAE backbones and raise
``NotImplementedError`` for others) decay an EAC backbone by its
``get_layer_depth``.
"""
import functools
from typing import Dict, List

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

__all__ = ['eac_no_decay_params', 'apply']

_FLAG = '_mmeac_no_decay_patch'


def eac_no_decay_params(model: nn.Module) -> Dict[int, str]:
    """EAC's no-decay parameters in ``model``, by ``id``, with their names."""
    from mmeac.models.backbones.eac_vit import CoreCoordUpdate, EACViT
    owned = set()
    for module in model.modules():
        if isinstance(module, EACViT):
            owned.update(id(p) for p in module.core_chunks)
            owned.update(id(p) for p in module.core_coord_chunks)
        elif isinstance(module, CoreCoordUpdate):
            owned.add(id(module.alpha))
    return {
        id(p): name
        for name, p in model.named_parameters() if id(p) in owned
    }


_EAC_NAMES = ('core_chunks', 'core_coord_chunks', 'coord_updates')


def _user_decay_keys(constructor) -> List[str]:
    keys = (constructor.paramwise_cfg or {}).get('custom_keys', {}) or {}
    return [k for k, v in keys.items() if 'decay_mult' in (v or {})]


def _names_it(key: str, name: str) -> bool:
    """Whether ``custom_keys`` entry ``key`` names EAC parameter ``name``.

    Only the EAC part of the name counts (``core_chunks.0``,
    ``coord_updates.3.alpha``), so that a key for a whole module, such as
    ``'backbone'`` with a ``lr_mult``, does not opt the cores into decay.
    """
    starts = [name.find(n) for n in _EAC_NAMES if n in name]
    own = name[min(starts):] if starts else name
    return key.strip('.') != '' and key.strip('.') in own


def _zero_decay(constructor, model: nn.Module, optimizer) -> int:
    """Move EAC's parameters into zero-decay groups; returns how many."""
    params = eac_no_decay_params(model)
    user_keys = _user_decay_keys(constructor)
    params = {
        i: n
        for i, n in params.items()
        if not any(_names_it(k, n) for k in user_keys)
    }
    if not params:
        return 0
    moved = 0
    new_groups = []
    for group in optimizer.param_groups:
        if not group.get('weight_decay'):
            continue
        mine = [p for p in group['params'] if id(p) in params]
        if not mine:
            continue
        moved += len(mine)
        if len(mine) == len(group['params']):
            group['weight_decay'] = 0.0
            continue
        group['params'] = [p for p in group['params'] if id(p) not in params]
        clone = {k: v for k, v in group.items() if k != 'params'}
        if isinstance(clone.get('param_names'), list):
            clone['param_names'] = [params[id(p)] for p in mine]
            group['param_names'] = [
                n for n in group['param_names']
                if n not in set(clone['param_names'])
            ]
        clone.update(params=mine, weight_decay=0.0)
        new_groups.append(clone)
    for clone in new_groups:
        optimizer.add_param_group(clone)
    return moved


def _wrap_call(original):

    @functools.wraps(original)
    def __call__(self, model: nn.Module):
        _patch_layer_decay(self)
        optim_wrapper = original(self, model)
        optimizer = getattr(optim_wrapper, 'optimizer', None)
        if optimizer is not None:
            target = model.module if hasattr(model, 'module') else model
            moved = _zero_decay(self, target, optimizer)
            if moved:
                print_log(
                    f'mmeac: {moved} EAC core / coordinate parameters get '
                    'no weight decay',
                    logger='current')
        return optim_wrapper

    setattr(__call__, _FLAG, True)
    return __call__


def _eac_layer_decay_groups(constructor, params: List[dict],
                            module: nn.Module) -> None:
    """mmseg / mmdet ``LearningRateDecayOptimizerConstructor`` for EAC.

    Same groups as theirs (``decay`` / ``no_decay`` per layer, lr scaled by
    ``decay_rate ** (num_layers - layer_id - 1)``), with the depths of the
    backbone's ``get_layer_depth``.
    """
    cfg = constructor.paramwise_cfg
    decay_rate = cfg.get('decay_rate', cfg.get('layer_decay_rate', 1.0))
    if 'layer_wise' not in cfg.get('decay_type', 'layer_wise'):
        raise ValueError(
            f"{type(constructor).__name__}: decay_type="
            f"{cfg.get('decay_type')!r} is not supported for "
            f"{type(module.backbone).__name__}; use decay_type='layer_wise'")
    groups: Dict[str, dict] = {}
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim == 1 or name.endswith('.bias')
        layer_id, total = module.backbone.get_layer_depth(name, 'backbone.')
        key = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
        if key not in groups:
            scale = decay_rate**(total - layer_id - 1)
            groups[key] = dict(
                weight_decay=0.0 if no_decay else constructor.base_wd,
                params=[],
                param_names=[],
                lr_scale=scale,
                group_name=key,
                lr=scale * constructor.base_lr)
        groups[key]['params'].append(param)
        groups[key]['param_names'].append(name)
    params.extend(groups.values())


def _wrap_layer_decay(original):

    @functools.wraps(original)
    def add_params(self, params, module, **kwargs):
        backbone = getattr(module, 'backbone', None)
        known = any(
            k in type(backbone).__name__ for k in ('ConvNeXt', 'BEiT', 'MAE'))
        if not known and hasattr(backbone, 'get_layer_depth'):
            return _eac_layer_decay_groups(self, params, module)
        return original(self, params, module, **kwargs)

    setattr(add_params, _FLAG, True)
    return add_params


_LAYER_DECAY_MODULES = (
    'mmseg.engine.optimizers.layer_decay_optimizer_constructor',
    'mmdet.engine.optimizers.layer_decay_optimizer_constructor')


def _patch_layer_decay(constructor) -> None:
    """Teach an mmseg / mmdet layer-decay constructor class about EAC.

    Done lazily, when such a constructor is first called, so that importing
    mmeac does not import their engines.
    """
    for cls in type(constructor).__mro__:
        if (cls.__module__ in _LAYER_DECAY_MODULES
                and 'add_params' in cls.__dict__
                and not getattr(cls.add_params, _FLAG, False)):
            cls.add_params = _wrap_layer_decay(cls.add_params)


def apply() -> bool:
    """Install the wrappers (idempotent). Returns True if done now."""
    current = DefaultOptimWrapperConstructor.__call__
    if getattr(current, _FLAG, False):
        return False
    DefaultOptimWrapperConstructor.__call__ = _wrap_call(current)
    return True
