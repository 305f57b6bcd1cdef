"""Every config under ``configs/`` builds; the segmentation configs say what
the recipes promise; EAC-B UperNet at 1024 gives full-resolution logits.

Each config is loaded with ``Config.fromfile`` (after ``import mmeac``, as
the tools do), its ``default_scope`` is initialised and its model is built
with MMEngine's root ``MODELS`` registry, so mmseg, mmdet and mmpretrain
configs all build the way their runners build them. Where only structure
and shapes are checked, models are built on the ``meta`` device (no memory,
no initialisation); numbers are checked on the CPU at a small size.
"""
import copy
import functools
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmeac  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, REPO) for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep)
    # built with a stand-in teacher in tests/test_distill.py
    and not osp.basename(p).startswith('distill'))
SEG_B_1024 = 'configs/eac/upernet_eac-b_ade20k-1024.py'
PROBES = {
    'configs/eac/linear-probe_eac-b_1xb8-40k_ade20k-512x512.py': 512,
    'configs/eac/linear-probe_eac-b_1xb8-40k_ade20k-1024x1024.py': 1024,
}
UPERNETS = {  # config: (arch, embed dims, crop)
    SEG_B_1024: ('b', 768, 1024),
    'configs/eac/upernet_eac-s_8xb2-160k_ade20k-1024x1024.py':
    ('s', 384, 1024),
    'configs/eac/upernet_eac-l_8xb2-160k_ade20k-1024x1024.py':
    ('l', 1024, 1024),
    'configs/eac/upernet_eac-b_8xb2-160k_ade20k-512x512.py': ('b', 768, 512),
    'configs/eac/upernet_eac-s_8xb2-160k_ade20k-512x512.py': ('s', 384, 512),
    'configs/eac/upernet_eac-l_8xb2-160k_ade20k-512x512.py': ('l', 1024, 512),
}
DROPIN = 'configs/dropin/upernet_eac-b_mmseg-vit-ade20k-512.py'
#: Built on the CPU: mmseg's Segmenter mask head reads values while it is
#: built (drop-path rates through ``Tensor.item()``), which meta tensors
#: do not have.
CPU_BUILDS = {'configs/dropin/segmenter_eac-b_mask_ade20k-512.py'}


@functools.lru_cache(maxsize=None)
def _parse(path: str) -> Config:
    return Config.fromfile(osp.join(REPO, path))


def _load(path: str) -> Config:
    """The config at ``path``; parsed once per worker, a copy each call
    (tests change what they get)."""
    return copy.deepcopy(_parse(path))


def _bn(obj):
    """SyncBN -> BN in a config dict (CPU), in place."""
    if isinstance(obj, dict):
        if obj.get('type') == 'SyncBN':
            obj['type'] = 'BN'
        for v in obj.values():
            _bn(v)
    elif isinstance(obj, list):
        for v in obj:
            _bn(v)
    return obj


def _build(cfg: Config, device: str = 'meta'):
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    with torch.device(device):
        model = MODELS.build(_bn(cfg.model))
    # what a constructor placed on the CPU itself (EACViT's core
    # coordinates), and the data preprocessor's device
    return model.to(device)


def test_configs_found():
    names = set(CONFIGS)
    for path in [SEG_B_1024, DROPIN, *PROBES, *UPERNETS]:
        assert path in names


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path):
    cfg = _load(path)
    assert cfg.get('default_scope') in ('mmseg', 'mmdet', 'mmpretrain'), path
    model = _build(cfg, 'cpu' if path in CPU_BUILDS else 'meta')
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params > 0
    backbone = getattr(model, 'backbone', None)
    if cfg.model.get('backbone', {}).get('type') == 'EACViT':
        assert type(backbone).__name__ == 'EACViT'
        # the configured eval budget is the one the backbone holds
        assert backbone.num_cores == cfg.model.backbone.get(
            'num_cores', backbone.max_cores)


@pytest.mark.parametrize('path', sorted(UPERNETS))
def test_upernet_recipe(path):
    arch, dims, crop = UPERNETS[path]
    cfg = _load(path)
    m = cfg.model
    assert m.type == 'EncoderDecoder' and m.backbone.type == 'EACViT'
    assert m.backbone.arch == arch
    assert m.backbone.output_cls_token is False
    # nested dropout while fine-tuning: the backbone's default budgets
    assert 'train_num_cores' not in m.backbone
    assert 'train_budgets' not in m.backbone
    assert m.backbone.init_cfg == dict(
        type='Pretrained', checkpoint=f'checkpoints/eac-{arch}_veca.pth')
    assert m.neck.type == 'MultiLevelNeck'
    assert m.neck.in_channels == [dims] * 4 and m.neck.out_channels == dims
    assert m.neck.scales == [4, 2, 1, 0.5]
    assert m.decode_head.type == 'UPerHead'
    assert m.decode_head.in_channels == [dims] * 4
    assert m.decode_head.num_classes == 150
    assert m.decode_head.norm_cfg.type == 'SyncBN'
    assert m.auxiliary_head.in_channels == dims
    assert m.data_preprocessor.size == (crop, crop)
    assert m.test_cfg.mode == 'slide'
    assert m.test_cfg.crop_size == (crop, crop)
    assert m.test_cfg.stride == ((683, 683) if crop == 1024 else (341, 341))
    # the ADE pipeline at this crop size
    pipe = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert pipe['RandomResize'].scale == (4 * crop, crop)
    assert pipe['RandomResize'].ratio_range == (0.5, 2.0)
    assert pipe['RandomCrop'].crop_size == (crop, crop)
    assert pipe['RandomCrop'].cat_max_ratio == 0.75
    assert 'PhotoMetricDistortion' in pipe and 'RandomFlip' in pipe
    test_pipe = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    assert test_pipe['Resize'].scale == (4 * crop, crop)
    assert cfg.train_dataloader.dataset.data_root == \
        'data/ade/ADEChallengeData2016'
    # AdamW + layer-wise decay through get_layer_depth, warmup + poly
    ow = cfg.optim_wrapper
    assert ow.constructor == 'LayerDecayOptimWrapperConstructor'
    assert ow.optimizer.type == 'AdamW'
    assert ow.optimizer.lr == 1e-4 and ow.optimizer.weight_decay == 0.05
    assert ow.paramwise_cfg.layer_decay_rate == (0.9 if arch == 'l' else 0.65)
    warm, poly = cfg.param_scheduler
    assert warm.type == 'LinearLR' and warm.end == 1500
    assert poly.type == 'PolyLR' and poly.begin == 1500
    assert poly.end == cfg.train_cfg.max_iters == 160000
    assert cfg.find_unused_parameters is True
    assert cfg.custom_imports.imports == ['mmeac']


def test_upernet_b_1024_layer_decay_groups():
    """The optimizer gets the backbone's depths: block 0 decays most."""
    from mmengine.optim import build_optim_wrapper
    cfg = _load(SEG_B_1024)
    model = _build(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    scales = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            scales[id(p)] = group['lr'] / 1e-4
    named = dict(model.named_parameters())
    assert scales[id(named['decode_head.conv_seg.weight'])] == pytest.approx(1)
    assert scales[id(named['backbone.layers.11.ffn.fc2.weight'])] == \
        pytest.approx(0.65)
    assert scales[id(named['backbone.patch_embed.proj.weight'])] == \
        pytest.approx(0.65**13)


def test_amp_variant():
    cfg = _load('configs/eac/upernet_eac-b_8xb2-amp-160k_ade20k-1024x1024.py')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.optim_wrapper.constructor == 'LayerDecayOptimWrapperConstructor'
    assert cfg.model == _load(SEG_B_1024).model


@pytest.mark.parametrize('path', sorted(PROBES))
def test_linear_probe_recipe(path):
    crop = PROBES[path]
    cfg = _load(path)
    m = cfg.model
    assert m.backbone.type == 'EACViT' and m.backbone.arch == 'b'
    assert m.backbone.output_cls_token is True
    assert m.backbone.frozen_stages == 12
    assert m.decode_head.type == 'LinearProbeSegHead'
    assert m.decode_head.with_global is True
    assert m.get('auxiliary_head') is None and m.get('neck') is None
    assert m.data_preprocessor.size == (crop, crop)
    assert cfg.train_dataloader.batch_size == 8
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.lr == 0.01 and opt.weight_decay == 1e-4
    assert [s.type for s in cfg.param_scheduler] == ['PolyLR']
    assert cfg.train_cfg.max_iters == 40000
    model = _build(cfg)
    # the whole backbone is frozen and stays in eval mode in train mode
    assert all(not p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert not model.backbone.training
    assert all(not mod.training for mod in model.backbone.modules())
    assert model.decode_head.training
    # one linear layer over patch ++ global (2 x 768 channels), no norm
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == [
        'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'
    ]
    assert model.decode_head.conv_seg.weight.shape == (150, 1536, 1, 1)


def test_dropin_swaps_only_backbone_and_neck():
    cfg = _load(DROPIN)
    base_path = _mmseg_config(
        'vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py')
    assert osp.isfile(base_path)
    base = Config.fromfile(base_path)
    assert base.model.backbone.type == 'VisionTransformer'
    assert cfg.model.backbone.type == 'EACViT'
    assert cfg.model.neck.type == 'MultiLevelNeck'
    assert 'img_size' not in cfg.model.backbone  # no ViT leftovers
    # the base's ViT checkpoint stays; EACViT ignores it (init_cfg is set)
    assert cfg.model.pretrained == base.model.pretrained
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    # a `pkg::` base marks its dicts with `_scope_='mmseg'`; that aside,
    # everything but backbone and neck is the wheel's config
    ours, theirs = _unscoped(cfg.to_dict()), _unscoped(base.to_dict())
    for key in set(ours['model']) | set(theirs['model']):
        if key not in ('backbone', 'neck', 'pretrained'):
            assert ours['model'].get(key) == theirs['model'].get(key), key
    # configs/dropin/_base_/eac_parts.py adds the parts it names (eac_b,
    # eac_b_4, sfp, mln), the recipes' shared backbones and necks
    added = ('custom_imports', 'find_unused_parameters', 'eac_b', 'eac_b_4',
             'sfp', 'mln')
    assert set(ours) - set(theirs) == set(added)
    for key in set(ours) | set(theirs):
        if key not in ('model', ) + added:
            assert ours.get(key) == theirs.get(key), key
    model = _build(cfg)
    out = model.extract_feat(torch.empty(1, 3, 64, 64, device='meta'))
    assert [tuple(o.shape) for o in out] == [(1, 768, 16, 16), (1, 768, 8, 8),
                                             (1, 768, 4, 4), (1, 768, 2, 2)]


def _unscoped(obj):
    if isinstance(obj, dict):
        return {k: _unscoped(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unscoped(v) for v in obj)
    return obj


def _mmseg_config(rel: str) -> str:
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', rel)


def _predict(model, image: torch.Tensor):
    """``model.predict`` of one ``[3, H, W]`` image, as the inferencer."""
    from mmseg.structures import SegDataSample
    shape = tuple(image.shape[-2:])
    meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape)
    with torch.no_grad():
        data = model.data_preprocessor(
            dict(inputs=[image], data_samples=[SegDataSample(metainfo=meta)]),
            False)
        return model.predict(data['inputs'], data['data_samples'])[0]


def test_upernet_b_1024_full_resolution_shapes():
    """One 1024 x 1024 image -> 150 x 1024 x 1024 logits (meta device)."""
    cfg = _load(SEG_B_1024)
    assert cfg.model.test_cfg.crop_size == (1024, 1024)
    # one 1024 window: slide inference is whole-image inference here (its
    # coverage check reads values, which meta tensors do not have)
    cfg.model.test_cfg.mode = 'whole'
    model = _build(cfg).eval()
    out = _predict(model, torch.empty(3, 1024, 1024, device='meta'))
    assert model.backbone.last_num_cores == 64
    assert out.seg_logits.data.shape == (150, 1024, 1024)
    assert out.pred_sem_seg.data.shape == (1, 1024, 1024)


def test_upernet_b_slide_inference_numbers():
    """The same model on the CPU, crop and stride scaled down from 1024 /
    683 to 64 / 43: two overlapping windows over a 64 x 96 image."""
    cfg = _load(SEG_B_1024)
    assert cfg.model.test_cfg.stride == (683, 683)
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.model.test_cfg.update(crop_size=(64, 64), stride=(43, 43))
    model = _build(cfg, 'cpu').eval()
    torch.manual_seed(0)
    out = _predict(model, torch.rand(3, 64, 96) * 255)
    assert model.backbone.last_num_cores == 64
    logits = out.seg_logits.data
    assert logits.shape == (150, 64, 96)
    assert torch.isfinite(logits).all()
    pred = out.pred_sem_seg.data
    assert pred.shape == (1, 64, 96)
    assert torch.equal(pred[0], logits.argmax(0))
