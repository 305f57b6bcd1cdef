"""Checks that an EAC backbone / neck fits the upstream model it was put in.

A drop-in swap (EAC in an mmseg / mmdet / mmpretrain config) can build and
even train while the parts do not fit: a detector whose neck levels sit at
other strides than its anchors trains on misplaced priors, a classifier fed a
feature map where it expects a vector fails deep inside a matmul. These
checks run once, on the first forward of :class:`EACViT` and
:class:`SimpleFeaturePyramid` (the owning model is found on the call stack,
so no upstream code changes), and stop with one line that names the fix.
"""
import re
import sys
from typing import List, Optional, Sequence

import torch
from torch import nn

__all__ = [
    'DropinError', 'find_owner', 'check_detector_strides',
    'check_backbone_consumer', 'neck_settings_for'
]


class DropinError(ValueError):
    """A drop-in mismatch, with the fix in its (one-line) message."""


def find_owner(module: nn.Module,
               attr: str,
               max_depth: int = 16) -> Optional[nn.Module]:
    """The module on the call stack that holds ``module`` as ``attr``.

    Walks up the caller frames (from a forward pre-hook: ``_call_impl`` and
    then e.g. ``extract_feat``) for a ``self`` whose child ``attr`` is
    ``module``.

    Returns:
        nn.Module | None: The owner, or None when called outside one (or
        while being compiled, where the check is skipped).
    """
    if _tracing():
        return None
    frame = sys._getframe(1)
    for _ in range(max_depth):
        frame = frame.f_back
        if frame is None:
            return None
        owner = frame.f_locals.get('self')
        if (isinstance(owner, nn.Module) and owner is not module
                and owner._modules.get(attr) is module):
            return owner
    return None


def _tracing() -> bool:
    """Under torch.compile / strict torch.export (no frame walking there)."""
    compiler = getattr(torch, 'compiler', None)
    is_compiling = getattr(compiler, 'is_compiling', None)
    return bool(is_compiling is not None and is_compiling())


# ----------------------------------------------------------------- detectors
def _first(stride) -> int:
    """A prior generator stride (``s`` or ``(s_w, s_h)``) as one int."""
    if isinstance(stride, (tuple, list)):
        return int(stride[0])
    return int(stride)


def _expected_strides(detector: nn.Module) -> List[tuple]:
    """``(what, strides, exact)`` for every part that fixes the strides.

    ``exact`` means every neck level is used (prior generators); RoI
    extractors use the first ``len(featmap_strides)`` levels.
    """
    found = []
    for head_name in ('rpn_head', 'bbox_head'):
        head = getattr(detector, head_name, None)
        gen = getattr(head, 'prior_generator', None)
        strides = getattr(gen, 'strides', None)
        if strides:
            found.append((f'{type(head).__name__} (model.{head_name})',
                          [_first(s) for s in strides], True))
    roi_head = getattr(detector, 'roi_head', None)
    for ext_name in ('bbox_roi_extractor', 'mask_roi_extractor'):
        ext = getattr(roi_head, ext_name, None)
        if ext is None:
            continue
        many = isinstance(ext, nn.ModuleList)
        for i, e in enumerate(ext if many else [ext]):
            strides = getattr(e, 'featmap_strides', None)
            if strides:
                where = f'{ext_name}[{i}]' if many else ext_name
                found.append((f'RoI extractor (model.roi_head.{where})',
                              [int(s) for s in strides], False))
    return found


def neck_settings_for(strides: Sequence[int],
                      in_stride: int = 16,
                      prefix: bool = False) -> Optional[str]:
    """Neck arguments that give ``strides`` from a map of ``in_stride``.

    Args:
        strides (Sequence[int]): The strides wanted, fine to coarse.
        in_stride (int): Stride of the neck's input map.
        prefix (bool): Whether further, coarser levels may follow (an RoI
            extractor reads only the first ``len(strides)`` levels).

    Returns:
        str | None: ``"preset='...'"`` when a preset fits, else explicit
        ``scale_factors=..., num_outs=...``; None when no setting can.
    """
    from ..necks.simple_feature_pyramid import NECK_PRESETS
    strides = [int(s) for s in strides]
    for name, (scales, num_outs) in NECK_PRESETS.items():
        got = [int(round(in_stride / s)) for s in scales]
        while len(got) < num_outs:
            got.append(got[-1] * 2)
        if got == strides or (prefix and got[:len(strides)] == strides):
            return f'preset={name!r}'
    scales: List[float] = []
    for s in strides:
        scale = in_stride / s
        if scale not in (4.0, 2.0, 1.0, 0.5) or (scales
                                                 and scale >= scales[-1]):
            break
        scales.append(scale)
    if not scales:
        return None
    prev = strides[len(scales) - 1]
    for s in strides[len(scales):]:
        if s != prev * 2:
            return None
        prev = s
    return f'scale_factors={tuple(scales)}, num_outs={len(strides)}'


def _num_levels(detector: nn.Module) -> Optional[int]:
    """Feature levels a DETR-style detector's encoder reads."""
    levels = getattr(detector, 'num_feature_levels', None)
    return int(levels) if isinstance(levels, int) else None


def check_detector_strides(detector: nn.Module) -> None:
    """Compare the neck's output strides with the detector's heads.

    Checks the RPN / dense head's prior generator strides (every level),
    the RoI extractors' ``featmap_strides`` (the leading levels) and the
    number of levels of DETR-style detectors (``num_feature_levels``), and
    the neck's ``in_stride`` against the backbone's patch size.

    Raises:
        DropinError: One line naming the neck setting that fits.
    """
    neck = getattr(detector, 'neck', None)
    if neck is None or not hasattr(neck, 'strides'):
        return
    name = type(neck).__name__
    patch = getattr(getattr(detector, 'backbone', None), 'patch_size', None)
    if isinstance(patch, int) and patch != neck.in_stride:
        raise DropinError(
            f'{name}: in_stride={neck.in_stride} but the backbone has '
            f'patch_size={patch}; set model.neck.in_stride={patch}')
    have = neck.strides
    parts = _expected_strides(detector)
    exact = [p for p in parts if p[2]]
    if parts:
        target_what, target = (exact or parts)[0][:2]
    for what, want, is_exact in parts:
        agrees = want == target if is_exact else target[:len(want)] == want
        if not agrees:
            raise DropinError(
                f'the heads disagree on the feature strides: {what} expects '
                f'{want}, {target_what} {target}; fix the head config')
    for what, want, is_exact in parts:
        if have == want if is_exact else have[:len(want)] == want:
            continue
        fix = neck_settings_for(target, neck.in_stride, prefix=not exact)
        hint = ('set ' + re.sub(r'(^|, )(\w+)=', r'\1model.neck.\2=', fix)
                if fix else 'no SimpleFeaturePyramid setting gives them')
        raise DropinError(
            f'{name} gives strides {have} but {what} expects {want}: {hint}')
    levels = _num_levels(detector)
    if levels is not None and levels != len(have):
        fix = 'preset=\'detr\'' if levels == 4 else f'num_outs={levels}'
        raise DropinError(
            f'{name} gives {len(have)} levels (strides {have}) but '
            f'{type(detector).__name__} reads num_feature_levels={levels}: '
            f'set model.neck.{fix}')


# ----------------------------------------------------------------- backbone
def _cls_heads() -> tuple:
    """mmpretrain heads that take one ``[B, C]`` vector per image."""
    try:
        from mmpretrain.models.heads import (LinearClsHead,
                                             MultiLabelLinearClsHead,
                                             StackedLinearClsHead,
                                             VisionTransformerClsHead)
    except ImportError:
        return ()
    return (LinearClsHead, VisionTransformerClsHead, StackedLinearClsHead,
            MultiLabelLinearClsHead)


def _pooling_necks() -> tuple:
    try:
        from mmpretrain.models.necks import GlobalAveragePooling
    except ImportError:
        return ()
    return (GlobalAveragePooling, )


def _channels(module: nn.Module) -> Optional[List[int]]:
    """A consumer's ``in_channels`` (or ``input_features``) as a list."""
    for attr in ('in_channels', 'input_features'):
        value = getattr(module, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        if isinstance(value, (list, tuple)) and value and all(
                isinstance(v, int) for v in value):
            return list(value)
    return None


def _arch(backbone: nn.Module) -> str:
    return (f'{type(backbone).__name__}(embed_dims='
            f'{backbone.embed_dims})')


def check_backbone_consumer(model: nn.Module, backbone: nn.Module) -> None:
    """Check that what consumes the EAC outputs can take them.

    * a classifier's vector head (``LinearClsHead``,
      ``VisionTransformerClsHead``, ...) without a pooling neck needs
      ``out_type='cls_token'`` or ``'avg_featmap'``; a pooling neck needs
      ``'featmap'``;
    * the neck (or, without one, a classifier head) must take
      ``embed_dims`` channels, one entry per returned level.

    Raises:
        DropinError: One line naming the setting to change.
    """
    out_type = getattr(backbone, 'out_type', 'featmap')
    dims = backbone.embed_dims
    levels = len(getattr(backbone, 'out_indices', [None]))
    neck = getattr(model, 'neck', None)
    head = getattr(model, 'head', None)
    cls_heads = _cls_heads()
    vector = out_type in ('cls_token', 'avg_featmap')
    if cls_heads and isinstance(head, cls_heads[1]) and getattr(
            backbone, 'output_cls_token', False):
        vector = True  # the ViT head takes the token of [featmap, token]
    if head is not None and cls_heads and isinstance(head, cls_heads):
        if neck is None and not vector:
            raise DropinError(
                f"{_arch(backbone)} gives [B, {dims}, h, w] maps "
                f"(out_type='featmap') but {type(head).__name__} takes "
                "[B, C] vectors: set model.backbone.out_type='cls_token' "
                "(global token) or 'avg_featmap' (mean of patch tokens)")
        pooling = _pooling_necks()
        if neck is not None and pooling and isinstance(
                neck, pooling) and out_type != 'featmap':
            raise DropinError(
                f"{_arch(backbone)} gives [B, {dims}] vectors "
                f"(out_type={out_type!r}) but {type(neck).__name__} pools "
                "feature maps: set model.backbone.out_type='featmap' or "
                'model.neck=None')
        if neck is None or (pooling and isinstance(neck, pooling)):
            _check_width(head, 'model.head', dims, backbone)
            return
    if neck is not None:
        channels = _channels(neck)
        if channels is None:
            return
        if len(channels) > 1 and len(channels) != levels:
            raise DropinError(
                f'model.neck ({type(neck).__name__}) takes {len(channels)} '
                f'levels (in_channels={channels}) but {_arch(backbone)} '
                f'returns {levels} (out_indices={backbone.out_indices}): set '
                f'model.backbone.out_indices to {len(channels)} blocks or '
                f'model.neck.in_channels={[dims] * levels}')
        _check_width(neck, 'model.neck', dims, backbone)


def _check_width(module: nn.Module, where: str, dims: int,
                 backbone: nn.Module) -> None:
    channels = _channels(module)
    if channels is None or all(c == dims for c in channels):
        return
    fix = dims if len(channels) == 1 else [dims] * len(channels)
    attr = 'input_features' if hasattr(module, 'input_features') and (
        not hasattr(module, 'in_channels')) else 'in_channels'
    raise DropinError(
        f'{where} ({type(module).__name__}) takes {attr}='
        f'{channels[0] if len(channels) == 1 else channels} but '
        f'{_arch(backbone)} gives {dims} channels: set {where}.{attr}='
        f'{fix}')


def check_in_model(backbone: nn.Module, args: tuple) -> None:
    """Forward pre-hook of :class:`EACViT`.

    Checks the owning model once; the hook removes itself after a check
    that passed (it stays, and checks again, while there is no owner or the
    check fails).
    """
    owner = find_owner(backbone, 'backbone')
    if owner is not None:
        check_backbone_consumer(owner, backbone)
        remove_hook(backbone, check_in_model)


def remove_hook(module: nn.Module, func) -> None:
    """Remove every forward pre-hook ``func`` of ``module``."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if hook is func:
            del module._forward_pre_hooks[key]
