"""ViTDet-style simple feature pyramid for single-scale ViT backbones.

A plain ViT (and EAC) produces one stride-16 patch map. Following ViTDet
(Li et al., "Exploring Plain Vision Transformer Backbones for Object
Detection", ECCV 2022), the multi-scale maps a detector needs are made from
that single map alone: strides 4 and 8 by transposed convolutions, 16 as it
is, 32 by max pooling, each followed by a 1x1 and a 3x3 convolution with
normalisation; extra coarser levels are stride-2 subsamples of the last one.

Three presets match mmdet's head families (strides for a stride-16 input):

* ``'two_stage'`` (default): strides 4, 8, 16, 32, 64 (RPN + RoI heads:
  Faster / Mask / Cascade R-CNN, the five levels of a ResNet-FPN);
* ``'single_stage'``: strides 8, 16, 32, 64, 128 (anchor and point heads:
  RetinaNet, FCOS, ATSS, GFL, ...);
* ``'detr'``: strides 8, 16, 32, 64, four levels (Deformable DETR, DINO).

On its first forward inside a detector the neck compares its strides with
the heads' (:func:`mmeac.models.utils.check_detector_strides`) and stops with
one line naming the preset to use.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

__all__ = ['SimpleFeaturePyramid', 'LayerNorm2d', 'NECK_PRESETS']

#: ``preset`` name -> (scale_factors, num_outs).
NECK_PRESETS = {
    'two_stage': ((4.0, 2.0, 1.0, 0.5), 5),
    'single_stage': ((2.0, 1.0, 0.5), 5),
    'detr': ((2.0, 1.0, 0.5), 4),
}


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of a ``[B, C, H, W]`` tensor.

    Computed with ``F.layer_norm`` on a channels-last view, so that it runs
    in float32 under autocast like any other LayerNorm.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f'LayerNorm2d expects [B, C, H, W], got '
                             f'{tuple(x.shape)}')
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)


def _norm(norm_cfg: Optional[dict], channels: int) -> nn.Module:
    """Build a channels-first norm layer; ``LN2d`` is :class:`LayerNorm2d`."""
    if norm_cfg is None:
        return nn.Identity()
    cfg = dict(norm_cfg)
    if cfg.get('type') in ('LN2d', 'LayerNorm2d'):
        return LayerNorm2d(channels, eps=cfg.get('eps', 1e-6))
    return build_norm_layer(cfg, channels)[1]


def _conv_norm(in_channels: int, out_channels: int, kernel_size: int,
               norm_cfg: Optional[dict]) -> nn.Sequential:
    """Conv (bias only without a norm) followed by the norm."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=norm_cfg is None), _norm(norm_cfg, out_channels))


def _check_in_detector(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook: check the strides against the owning detector.

    Removes itself after a check that passed; a neck called outside a
    detector is not checked.
    """
    from ..utils.dropin_checks import (check_detector_strides, find_owner,
                                       remove_hook)
    owner = find_owner(module, 'neck')
    if owner is not None:
        check_detector_strides(owner)
        remove_hook(module, _check_in_detector)


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """Multi-scale maps from a single-scale (stride-16) ViT patch map.

    For every entry ``s`` of ``scale_factors`` (relative to the input
    stride), the input map is resampled and projected to ``out_channels``:

    * ``4``: ``ConvT(2x2, /2 ch) -> norm -> GELU -> ConvT(2x2, /4 ch)``
    * ``2``: ``ConvT(2x2, /2 ch)``
    * ``1``: identity
    * ``0.5``: ``MaxPool(2x2)`` (ceil mode, so odd maps keep their border)

    then ``Conv1x1 -> norm -> Conv3x3 -> norm``. With ``num_outs`` larger
    than ``len(scale_factors)``, each extra level is the previous output max
    pooled with kernel 1 and stride 2 (ViTDet's ``LastLevelMaxPool``).

    Args:
        in_channels (int): Channels ``D`` of the backbone map(s).
        out_channels (int): Channels of every output level. Defaults to 256.
        preset (str, optional): ``'two_stage'``, ``'single_stage'`` or
            ``'detr'`` (see the module doc); sets ``scale_factors`` and
            ``num_outs``, which, when given too, take precedence. Defaults to
            ``'two_stage'``.
        scale_factors (Sequence[float], optional): Upsampling factors, from
            fine to coarse, each in ``{4, 2, 1, 0.5}``. Defaults to the
            preset's.
        num_outs (int, optional): Number of output levels
            (``>= len(scale_factors)``). Defaults to the preset's (at least
            ``len(scale_factors)``).
        in_stride (int): Stride of the input map (the backbone's patch size).
            Only used to report :attr:`strides`. Defaults to 16.
        in_index (int | Sequence[int]): Which backbone output(s) to use: one
            index (the same map for every scale, ViTDet) or one index per
            scale factor (a different block per level). Defaults to -1.
        norm_cfg (dict, optional): Norm after each conv; ``dict(type='LN2d')``
            (channels-first LayerNorm) by default, as in ViTDet; any mmcv
            norm (``GN``, ``BN``, ``SyncBN``) works, ``None`` disables it.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to Kaiming (fan-out) for convolutions.
    """
    _allowed_scales = (4.0, 2.0, 1.0, 0.5)

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        preset: Optional[str] = None,
        scale_factors: Optional[Sequence[float]] = None,
        num_outs: Optional[int] = None,
        in_stride: int = 16,
        in_index: Union[int, Sequence[int]] = -1,
        norm_cfg: Optional[dict] = dict(type='LN2d', eps=1e-6),
        init_cfg: Optional[Union[dict, List[dict]]] = dict(
            type='Kaiming',
            layer=['Conv2d', 'ConvTranspose2d'],
            mode='fan_out',
            nonlinearity='relu',
            distribution='normal')
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if preset is not None and preset not in NECK_PRESETS:
            raise ValueError(f'SimpleFeaturePyramid: preset {preset!r} is not '
                             f'one of {sorted(NECK_PRESETS)}')
        preset_scales, preset_outs = NECK_PRESETS[preset or 'two_stage']
        if scale_factors is None:
            scale_factors = preset_scales
        if num_outs is None:
            num_outs = max(preset_outs, len(scale_factors))
        if in_stride < 1:
            raise ValueError(f'in_stride must be positive, got {in_stride}')
        scale_factors = tuple(float(s) for s in scale_factors)
        if not scale_factors:
            raise ValueError('scale_factors must not be empty')
        bad = [s for s in scale_factors if s not in self._allowed_scales]
        if bad:
            raise ValueError(f'scale_factors {bad} not supported; each must '
                             f'be one of {list(self._allowed_scales)}')
        if list(scale_factors) != sorted(scale_factors, reverse=True):
            raise ValueError(f'scale_factors must go from fine to coarse '
                             f'(descending), got {list(scale_factors)}')
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs ({num_outs}) must be >= the number '
                             f'of scale_factors ({len(scale_factors)})')
        if in_channels < 4 and 4.0 in scale_factors:
            raise ValueError(f'in_channels ({in_channels}) must be >= 4 for '
                             'scale factor 4')
        if isinstance(in_index, int):
            self.in_index: Union[int, Tuple[int, ...]] = in_index
        else:
            in_index = tuple(int(i) for i in in_index)
            if len(in_index) != len(scale_factors):
                raise ValueError(
                    f'in_index {list(in_index)} must give one backbone '
                    f'output per scale factor ({len(scale_factors)})')
            self.in_index = in_index

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.scale_factors = scale_factors
        self.num_outs = num_outs
        self.preset = preset
        self.in_stride = int(in_stride)
        # the drop-in check against the detector's heads, on the first call
        self.register_forward_pre_hook(_check_in_detector)

        self.stages = nn.ModuleList()
        for scale in scale_factors:
            resample, channels = self._resample(scale, in_channels, norm_cfg)
            self.stages.append(
                nn.Sequential(
                    resample, _conv_norm(channels, out_channels, 1, norm_cfg),
                    _conv_norm(out_channels, out_channels, 3, norm_cfg)))

    @staticmethod
    def _resample(scale: float, dims: int,
                  norm_cfg: Optional[dict]) -> Tuple[nn.Module, int]:
        """The resampling layers of one scale and their output channels."""
        if scale == 4.0:
            return nn.Sequential(
                nn.ConvTranspose2d(dims, dims // 2, 2, stride=2),
                _norm(norm_cfg, dims // 2), nn.GELU(),
                nn.ConvTranspose2d(dims // 2, dims // 4, 2,
                                   stride=2)), dims // 4
        if scale == 2.0:
            return nn.ConvTranspose2d(dims, dims // 2, 2, stride=2), dims // 2
        if scale == 1.0:
            return nn.Identity(), dims
        return nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True), dims

    @property
    def strides(self) -> List[int]:
        """Output strides (in pixels), fine to coarse."""
        strides = [int(round(self.in_stride / s)) for s in self.scale_factors]
        while len(strides) < self.num_outs:
            strides.append(strides[-1] * 2)
        return strides

    def _inputs(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        if isinstance(inputs, Tensor):
            inputs = (inputs, )
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise ValueError('SimpleFeaturePyramid expects a non-empty tuple '
                             f'of [B, C, H, W] maps, got {type(inputs)}')
        idx = (self.in_index, ) * len(self.scale_factors) if isinstance(
            self.in_index, int) else self.in_index
        try:
            feats = [inputs[i] for i in idx]
        except IndexError:
            raise ValueError(f'in_index {self.in_index} is out of range for '
                             f'{len(inputs)} backbone outputs') from None
        for f in feats:
            if not isinstance(f, Tensor) or f.dim() != 4 or (
                    f.shape[1] != self.in_channels):
                shape = tuple(f.shape) if isinstance(f, Tensor) else type(f)
                raise ValueError(
                    f'SimpleFeaturePyramid(in_channels={self.in_channels}) '
                    f'expects [B, {self.in_channels}, H, W] maps, got '
                    f'{shape}')
        return feats

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Args:
            inputs (Sequence[Tensor]): Backbone outputs ``[B, D, h, w]``.

        Returns:
            tuple[Tensor]: ``num_outs`` maps ``[B, out_channels, h_i, w_i]``
            from fine to coarse.
        """
        feats = self._inputs(inputs)
        outs = [stage(f) for stage, f in zip(self.stages, feats)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
