"""Model builders shared by the analysis tools (FLOPs, benchmarks).

Three backbones are compared side by side:

* ``eac``: :class:`EACViT` (core-periphery attention);
* ``dense``: the same network with ``DenseRoPEAttention`` (every token
  attends to every token), EAC's dense twin;
* ``vit``: mmseg's own ``VisionTransformer`` with the ViT settings of
  mmseg's ViT-B configs (CLS token, learned position embedding, GELU MLP
  with ratio 4, LN eps 1e-6), built at the benchmarked image size so that
  no position-embedding interpolation is needed.

A "whole model" is either a config's model (segmentor, detector or
classifier, with its backbone swapped for the peer) or, without a config,
an mmseg ``EncoderDecoder`` with a linear decode head (``FCNHead`` with no
convolution: dropout + 1x1 classifier, the EAC paper's linear-probe
protocol) on the last feature map.
"""
import copy
import json
from typing import List, Optional, Sequence, Tuple, Union

from torch import Tensor, nn

__all__ = [
    'parse_arch', 'eac_backbone_cfg', 'vit_backbone_cfg', 'linear_segmentor',
    'build_model', 'make_data_samples', 'tensor_forward', 'model_arch',
    'load_model_config', 'peer_backbone_cfg', 'output_sum', 'MODEL_KINDS'
]

#: Kinds of models the tools compare.
MODEL_KINDS = ('eac', 'dense', 'vit')


def parse_arch(arch: Union[str, dict]) -> Union[str, dict]:
    """An EAC arch name (``'s'``, ``'s+'``, ``'b'``, ``'l'``), a dict, or a
    JSON object string such as ``'{"embed_dims": 64, ...}'``.

    Raises:
        ValueError: For an unknown name or a dict missing keys.
    """
    from mmeac.models.backbones.veca_checkpoint import ARCH_ZOO
    if isinstance(arch, str) and arch.strip().startswith('{'):
        try:
            arch = json.loads(arch)
        except json.JSONDecodeError as err:
            raise ValueError(f'arch {arch!r} is not valid JSON: {err}')
    if isinstance(arch, str):
        if arch.lower() not in ARCH_ZOO:
            raise ValueError(f'arch {arch!r} is not one of '
                             f'{sorted(ARCH_ZOO)} nor a JSON dict')
        return arch.lower()
    need = {'embed_dims', 'num_layers', 'num_heads', 'mlp_ratio'}
    if not isinstance(arch, dict) or not need <= set(arch):
        raise ValueError(f'a custom arch must have keys {sorted(need)}, '
                         f'got {arch!r}')
    return dict(arch)


def model_arch(arch: Union[str, dict]) -> dict:
    """The settings dict (embed_dims, num_layers, num_heads, mlp_ratio)."""
    from mmeac.models.backbones.veca_checkpoint import ARCH_ZOO
    arch = parse_arch(arch)
    return dict(ARCH_ZOO[arch]) if isinstance(arch, str) else dict(arch)


def eac_backbone_cfg(arch: Union[str, dict] = 'b',
                     max_cores: int = 64,
                     num_cores: Optional[int] = None,
                     dense: bool = False,
                     **kwargs) -> dict:
    """Config of an :class:`EACViT` (``dense=True``: its dense twin)."""
    cfg = dict(
        type='EACViT',
        arch=parse_arch(arch),
        max_cores=max_cores,
        num_cores=num_cores,
        **kwargs)
    if dense:
        cfg['attn_cfg'] = dict(type='DenseRoPEAttention')
    return cfg


def vit_backbone_cfg(arch: Union[str, dict] = 'b',
                     img_size: Tuple[int, int] = (512, 512),
                     out_indices: Union[int, Sequence[int]] = -1,
                     **kwargs) -> dict:
    """mmseg ``VisionTransformer`` config with the width / depth / heads of
    the EAC ``arch`` (``'b'`` gives mmseg's ViT-B) and mlp_ratio 4."""
    a = model_arch(arch)
    cfg = dict(
        type='mmseg.VisionTransformer',
        img_size=tuple(img_size),
        patch_size=16,
        in_channels=3,
        embed_dims=a['embed_dims'],
        num_layers=a['num_layers'],
        num_heads=a['num_heads'],
        mlp_ratio=4,
        out_indices=out_indices,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        with_cls_token=True,
        norm_cfg=dict(type='LN', eps=1e-6),
        act_cfg=dict(type='GELU'),
        norm_eval=False,
        interpolate_mode='bicubic')
    cfg.update(kwargs)
    return cfg


def linear_segmentor(backbone: dict,
                     embed_dims: int,
                     num_classes: int = 150,
                     dropout_ratio: float = 0.1) -> dict:
    """mmseg ``EncoderDecoder`` with a linear head on the last level."""
    return dict(
        type='mmseg.EncoderDecoder',
        backbone=backbone,
        decode_head=dict(
            type='mmseg.FCNHead',
            in_channels=embed_dims,
            in_index=-1,
            channels=embed_dims,
            num_convs=0,
            concat_input=False,
            dropout_ratio=dropout_ratio,
            num_classes=num_classes,
            norm_cfg=None,
            align_corners=False,
            loss_decode=dict(
                type='mmseg.CrossEntropyLoss',
                use_sigmoid=False,
                loss_weight=1.0)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def load_model_config(path: str, cfg_options: Optional[dict] = None):
    """Load a config file, merge options, set its default scope."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmeac  # noqa: F401  (registers the mmeac modules)
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if 'model' not in cfg:
        raise ValueError(f'config {path} has no `model`')
    return cfg


def peer_backbone_cfg(eac_cfg: dict, kind: str, img_size: Tuple[int,
                                                                int]) -> dict:
    """The ``kind`` peer of an EAC backbone config (same outputs)."""
    eac_cfg = copy.deepcopy(dict(eac_cfg))
    if kind == 'eac':
        return eac_cfg
    if kind == 'dense':
        eac_cfg['attn_cfg'] = dict(type='DenseRoPEAttention')
        return eac_cfg
    if kind == 'vit':
        if eac_cfg.get('out_type', 'featmap') != 'featmap':
            raise ValueError('the ViT peer supports featmap outputs only')
        return vit_backbone_cfg(
            eac_cfg.get('arch', 'b'),
            img_size=img_size,
            patch_size=eac_cfg.get('patch_size', 16),
            in_channels=eac_cfg.get('in_channels', 3),
            out_indices=eac_cfg.get('out_indices', -1),
            final_norm=eac_cfg.get('final_norm', True),
            output_cls_token=eac_cfg.get('output_cls_token', False))
    raise ValueError(f'model kind must be one of {MODEL_KINDS}, got {kind!r}')


def build_model(cfg: dict) -> nn.Module:
    """Build from the root registry (children scopes resolve ``mmseg.``).

    The config is wrapped in a ``ConfigDict`` (mmdet reads ``train_cfg.rpn``
    as attributes).
    """
    from mmengine.config import ConfigDict
    from mmengine.registry import MODELS

    import mmeac  # noqa: F401
    return MODELS.build(ConfigDict(copy.deepcopy(cfg)))


def make_data_samples(model: nn.Module, batch: int, height: int,
                      width: int) -> Optional[List]:
    """Data samples with the metainfo a segmentor / detector needs for a
    ``mode='tensor'`` forward (None for a bare backbone / classifier)."""
    meta = dict(
        img_shape=(height, width),
        ori_shape=(height, width),
        pad_shape=(height, width),
        batch_input_shape=(height, width),
        scale_factor=(1.0, 1.0))
    try:
        from mmseg.models.segmentors import BaseSegmentor
        if isinstance(model, BaseSegmentor):
            from mmseg.structures import SegDataSample
            return [SegDataSample(metainfo=meta) for _ in range(batch)]
    except ImportError:  # pragma: no cover
        pass
    try:
        from mmdet.models.detectors import BaseDetector
        if isinstance(model, BaseDetector):
            from mmdet.structures import DetDataSample
            return [DetDataSample(metainfo=meta) for _ in range(batch)]
    except ImportError:  # pragma: no cover
        pass
    return None


def tensor_forward(model: nn.Module,
                   inputs: Tensor,
                   data_samples: Optional[List] = None):
    """Raw network outputs: ``model(inputs, data_samples, mode='tensor')``
    for OpenMMLab models, ``model(inputs)`` for a bare backbone."""
    from mmengine.model import BaseModel
    if isinstance(model, BaseModel):
        return model(inputs, data_samples, mode='tensor')
    return model(inputs)


def output_sum(outputs) -> Tensor:
    """Sum of every tensor in a nested output (the fwd+bwd 'loss')."""
    if isinstance(outputs, Tensor):
        return outputs.float().sum()
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        parts = [output_sum(o) for o in outputs]
        parts = [p for p in parts if p is not None]
        return sum(parts) if parts else None
    return None
