"""Linear-probe segmentation head: patch token ++ global token -> 1x1 conv."""
from typing import Optional, Sequence, Union

import torch
from mmengine.registry import MODELS
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor

__all__ = ['LinearProbeSegHead']


@MODELS.register_module(force=True)  # replaces the lazy builder
class LinearProbeSegHead(BaseDecodeHead):
    """Linear segmentation probe on a frozen ViT (the EAC paper's protocol).

    Takes one backbone level in mmseg's ViT format ``[featmap, global]``
    (``EACViT(output_cls_token=True)``): ``featmap`` is ``[B, D, h, w]`` and
    ``global`` (the final core 0 of EAC) is ``[B, D]``. Every patch token is
    concatenated with the global token, giving ``2D`` channels, and a single
    ``1x1`` convolution (no norm, no activation: a linear classifier per
    patch) predicts the class logits at ``1/patch`` resolution; the base
    class upsamples them bilinearly to the label size for the loss and to the
    image size for prediction.

    Args:
        in_channels (int): Channels ``D`` of the backbone level.
        num_classes (int): Number of classes.
        with_global (bool): Concatenate the global token (``2D`` classifier
            inputs). With False the head takes a plain feature map ``[B, D,
            h, w]`` (or the first element of ``[featmap, global]``) and the
            classifier sees ``D`` channels. Defaults to True.
        in_index (int): Index of the backbone level. Defaults to -1.
        dropout_ratio (float): Dropout before the classifier. Defaults to 0
            (a pure linear probe).
        init_cfg (dict | list[dict], optional): Initialization of the
            classifier. Defaults to ``Normal(std=0.01)`` on ``conv_seg``.
        **kwargs: Other :class:`BaseDecodeHead` arguments (``loss_decode``,
            ``ignore_index``, ``align_corners``, ...). ``channels``,
            ``norm_cfg``, ``input_transform`` are fixed by this head.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 with_global: bool = True,
                 in_index: int = -1,
                 dropout_ratio: float = 0.0,
                 init_cfg: Optional[Union[dict, Sequence[dict]]] = dict(
                     type='Normal', std=0.01, override=dict(name='conv_seg')),
                 **kwargs) -> None:
        for key in ('channels', 'norm_cfg', 'input_transform', 'conv_cfg'):
            if kwargs.pop(key, None) is not None:
                raise ValueError(
                    f'LinearProbeSegHead fixes {key!r}; do not set it')
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError('LinearProbeSegHead takes one backbone level: '
                             f'in_channels must be a positive int, got '
                             f'{in_channels!r}')
        if not isinstance(in_index, int):
            raise ValueError('LinearProbeSegHead takes one backbone level: '
                             f'in_index must be an int, got {in_index!r}')
        self.with_global = with_global
        super().__init__(
            in_channels,
            in_channels * (2 if with_global else 1),
            num_classes=num_classes,
            in_index=in_index,
            input_transform=None,
            dropout_ratio=dropout_ratio,
            norm_cfg=None,
            init_cfg=init_cfg,
            **kwargs)

    def _features(self, inputs: Sequence) -> Tensor:
        """Build the ``[B, C, h, w]`` classifier input from the level."""
        level = inputs[self.in_index]
        if isinstance(level, (list, tuple)):
            if len(level) != 2:
                raise ValueError('LinearProbeSegHead expects a level '
                                 '[featmap, global], got a sequence of '
                                 f'{len(level)}')
            featmap, glob = level
        else:
            featmap, glob = level, None
        if featmap.dim() != 4 or featmap.shape[1] != self.in_channels:
            raise ValueError(
                f'LinearProbeSegHead expects a feature map [B, '
                f'{self.in_channels}, h, w], got {tuple(featmap.shape)}')
        if not self.with_global:
            return featmap
        if glob is None:
            raise ValueError(
                'LinearProbeSegHead(with_global=True) needs the global token: '
                'build the backbone with output_cls_token=True so that each '
                'level is [featmap, global]')
        if glob.shape != featmap.shape[:2]:
            raise ValueError(f'global token {tuple(glob.shape)} does not '
                             f'match feature map {tuple(featmap.shape)}')
        glob = glob[:, :, None, None].expand_as(featmap)
        return torch.cat([featmap, glob], dim=1)

    def forward(self, inputs: Sequence) -> Tensor:
        """Return class logits ``[B, num_classes, h, w]``."""
        return self.cls_seg(self._features(inputs))
