"""Drop-in checks, EACViT's drop-in arguments, weight decay and config loading.

* ``SimpleFeaturePyramid`` presets and the stride check against the
  detector's heads (RetinaNet with the two-stage neck is the silent failure
  it must catch);
* one-line errors when EAC's output does not fit the head or neck;
* ``out_type='avg_featmap'`` and ``pretrained=``;
* no weight decay on EAC's own parameters under every library's optimizer
  constructor;
* configs deriving from wheel configs load in a fresh interpreter that has
  not imported mmeac (environment fix), and with ``pkg_resources`` gone
  once mmeac is imported (in-process fix).
"""
import os.path as osp
import re
import subprocess
import sys
import textwrap
from unittest.mock import patch

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from torch import nn

import mmeac  # noqa: F401
from mmeac.models import EACViT
from mmeac.models.necks import SimpleFeaturePyramid
from mmeac.models.utils import DropinError, neck_settings_for

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
D = 64  # the tiny backbone's width
TINY = dict(embed_dims=D, num_layers=2, num_heads=2, mlp_ratio=2.0)


def _wheel(pkg: str, rel: str) -> str:
    mod = __import__(pkg)
    return osp.join(osp.dirname(mod.__file__), '.mim', 'configs', rel)


def _tiny_backbone(**kwargs) -> dict:
    return dict(type='EACViT', arch=TINY, max_cores=16, **kwargs)


def _state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _unchanged(model: nn.Module, before: dict) -> bool:
    after = model.state_dict()
    return before.keys() == after.keys() and all(
        torch.equal(before[k], after[k]) for k in before)


# ------------------------------------------------------- neck presets
@pytest.mark.parametrize('preset,strides,sizes', [
    ('two_stage', [4, 8, 16, 32, 64], [32, 16, 8, 4, 2]),
    ('single_stage', [8, 16, 32, 64, 128], [16, 8, 4, 2, 1]),
    ('detr', [8, 16, 32, 64], [16, 8, 4, 2]),
])
def test_neck_presets(preset, strides, sizes):
    neck = SimpleFeaturePyramid(in_channels=64, out_channels=16, preset=preset)
    assert neck.strides == strides
    outs = neck((torch.randn(1, 64, 8, 8), ))  # a 128 px image at stride 16
    assert [o.shape[-1] for o in outs] == sizes
    assert [128 // s for s in strides] == sizes


def test_neck_default_and_overrides():
    assert SimpleFeaturePyramid(in_channels=8).strides == [4, 8, 16, 32, 64]
    neck = SimpleFeaturePyramid(
        in_channels=8, preset='detr', num_outs=5, in_stride=8)
    assert neck.strides == [4, 8, 16, 32, 64]
    with pytest.raises(ValueError, match="preset 'retina' is not one of"):
        SimpleFeaturePyramid(in_channels=8, preset='retina')


def test_neck_settings_for():
    assert neck_settings_for([8, 16, 32, 64, 128]) == "preset='single_stage'"
    assert neck_settings_for([4, 8, 16, 32, 64]) == "preset='two_stage'"
    assert neck_settings_for([8, 16, 32, 64]) == "preset='detr'"
    assert neck_settings_for([16, 32,
                              64]) == ('scale_factors=(1.0, 0.5), num_outs=3')
    # a patch-8 backbone: the single-stage layout gives strides 4 .. 64
    assert neck_settings_for([4, 8, 16, 32, 64],
                             in_stride=8) == ("preset='single_stage'")
    assert neck_settings_for(
        [2, 4, 8],
        in_stride=8) == ('scale_factors=(4.0, 2.0, 1.0), num_outs=3')
    assert neck_settings_for([8, 24]) is None


# ------------------------------------------------------- detector strides
def _detector(rel: str, neck: dict, backbone: dict = None) -> nn.Module:
    cfg = Config.fromfile(_wheel('mmdet', rel))
    cfg.model.backbone = backbone or _tiny_backbone()
    cfg.model.neck = dict(
        type='SimpleFeaturePyramid', in_channels=64, out_channels=256, **neck)
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


def _det_batch(model, size=128):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[10., 12., 90., 100.]]), labels=torch.tensor([3]))
    data = dict(
        inputs=[torch.randint(0, 255, (3, size, size), dtype=torch.uint8)],
        data_samples=[sample])
    return model.data_preprocessor(data, True)


RETINA = 'retinanet/retinanet_r50_fpn_1x_coco.py'


def test_retinanet_with_two_stage_neck_stops():
    """The issue's case: it used to train with a finite loss on misplaced
    anchors; now the first forward stops with the preset to use."""
    model = _detector(RETINA, dict())  # the two-stage default
    assert model.bbox_head.prior_generator.strides[0] == (8, 8)
    before = _state(model)
    data = _det_batch(model)
    msg = (r"^SimpleFeaturePyramid gives strides \[4, 8, 16, 32, 64\] but "
           r"RetinaHead \(model.bbox_head\) expects \[8, 16, 32, 64, 128\]: "
           r"set model.neck.preset='single_stage'$")
    with pytest.raises(DropinError, match=msg):
        model.loss(data['inputs'], data['data_samples'])
    assert _unchanged(model, before)
    # still stops on the next call (predict too): the check stays armed
    model.eval()
    with pytest.raises(DropinError, match='single_stage'):
        model.predict(data['inputs'], data['data_samples'])


def test_retinanet_with_single_stage_neck_trains():
    model = _detector(RETINA, dict(preset='single_stage'))
    data = _det_batch(model)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert all(
        torch.isfinite(sum(v) if isinstance(v, list) else v)
        for v in losses.values())
    # the check passed and removed itself
    assert not model.neck._forward_pre_hooks
    feats = model.extract_feat(data['inputs'])
    # every level's map is the image size over the anchor stride
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2, 1]


def test_two_stage_and_roi_extractor_checks():
    mask_rcnn = 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
    model = _detector(mask_rcnn, dict(preset='single_stage'))
    with pytest.raises(
            DropinError,
            match=r"RPNHead \(model.rpn_head\) "
            r"expects \[4, 8, 16, 32, 64\]: set "
            r"model.neck.preset='two_stage'$"):
        model.extract_feat(_det_batch(model)['inputs'])
    # an RoI extractor alone (Fast R-CNN) reads the leading levels
    model = _detector('fast_rcnn/fast-rcnn_r50_fpn_1x_coco.py',
                      dict(preset='single_stage'))
    with pytest.raises(
            DropinError,
            match=(
                r'RoI extractor \(model.roi_head.bbox_roi_extractor\) expects '
                r"\[4, 8, 16, 32\]: set model.neck.preset='two_stage'$")):
        model.extract_feat(_det_batch(model)['inputs'])
    # cascade: one extractor per stage; heads that disagree are named
    model = _detector('cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
                      dict(preset='two_stage'))
    model.roi_head.bbox_roi_extractor[1].featmap_strides = [8, 16, 32, 64]
    msg = (r'^the heads disagree on the feature strides: RoI extractor '
           r'\(model.roi_head.bbox_roi_extractor\[1\]\) expects \[8, 16, 32, '
           r'64\], RPNHead \(model.rpn_head\) \[4, 8, 16, 32, 64\]')
    with pytest.raises(DropinError, match=msg):
        model.extract_feat(_det_batch(model)['inputs'])
    model.roi_head.bbox_roi_extractor[1].featmap_strides = [4, 8, 16, 32]
    assert len(model.extract_feat(_det_batch(model)['inputs'])) == 5


def test_explicit_settings_hint():
    """Strides no preset gives: the hint spells out the arguments."""
    model = _detector(RETINA, dict(preset='single_stage'))
    model.bbox_head.prior_generator.strides = [(s, s) for s in (16, 32, 64)]
    with pytest.raises(
            DropinError,
            match=re.escape('expects [16, 32, 64]: set '
                            'model.neck.scale_factors=(1.0, 0.5), '
                            'model.neck.num_outs=3')):
        model.extract_feat(_det_batch(model)['inputs'])


def test_detr_levels_and_patch_size_checks():
    dino = 'dino/dino-4scale_r50_8xb2-12e_coco.py'
    model = _detector(dino, dict())
    with pytest.raises(
            DropinError,
            match=r'gives 5 levels .* DINO reads '
            r"num_feature_levels=4: set model.neck.preset='detr'$"):
        model.extract_feat(_det_batch(model)['inputs'])
    model = _detector(dino, dict(preset='detr'))
    assert len(model.extract_feat(_det_batch(model)['inputs'])) == 4
    # a backbone with another patch size than the neck assumes
    model = _detector(
        RETINA,
        dict(preset='single_stage'),
        backbone=_tiny_backbone(patch_size=8))
    with pytest.raises(
            DropinError,
            match=r'in_stride=16 but the backbone '
            r'has patch_size=8; set model.neck.in_stride=8$'):
        model.extract_feat(_det_batch(model)['inputs'])


# ------------------------------------------------------- classifier errors
VIT_CLS = 'vision_transformer/vit-base-p16_64xb64_in1k-384px.py'


def _classifier(rel: str, backbone: dict, head_in=D) -> nn.Module:
    """The wheel's classifier with ``backbone``, its head taking ``head_in``
    channels (None: the base's ViT width left in place)."""
    cfg = Config.fromfile(_wheel('mmpretrain', rel))
    cfg.model.backbone = backbone
    if head_in is not None:
        cfg.model.head.in_channels = head_in
    init_default_scope('mmpretrain')
    return MODELS.build(cfg.model)


def test_vit_config_without_cls_token_is_one_line():
    """Used to end in 'mat1 and mat2 shapes cannot be multiplied'."""
    model = _classifier(VIT_CLS, _tiny_backbone())
    before = _state(model)
    x = torch.randn(2, 3, 64, 64)
    with pytest.raises(
            DropinError,
            match=(
                r"^EACViT\(embed_dims=64\) gives \[B, 64, h, w\] maps "
                r"\(out_type='featmap'\) but VisionTransformerClsHead takes "
                r"\[B, C\] vectors: set model.backbone.out_type='cls_token' "
                r"\(global token\) or 'avg_featmap' \(mean of patch tokens\)$"
            )):
        model(x, mode='tensor')
    assert _unchanged(model, before)
    # the base's ViT width left in the head
    model = _classifier(
        VIT_CLS, _tiny_backbone(out_type='cls_token'), head_in=None)
    msg = (r'^model.head \(VisionTransformerClsHead\) takes in_channels=768 '
           r'but EACViT\(embed_dims=64\) gives 64 channels: set '
           r'model.head.in_channels=64$')
    with pytest.raises(DropinError, match=msg):
        model(x, mode='tensor')
    # fixed as the messages say: it runs
    model = _classifier(VIT_CLS, _tiny_backbone(out_type='cls_token'))
    assert model(x, mode='tensor').shape == (2, 1000)
    # mmseg-style [featmap, token] output: the ViT head takes the token, a
    # linear head (MAE fine-tune) cannot
    model = _classifier(VIT_CLS, _tiny_backbone(output_cls_token=True))
    assert model(x, mode='tensor').shape == (2, 1000)
    mae = 'mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'
    model = _classifier(mae, _tiny_backbone(output_cls_token=True))
    with pytest.raises(DropinError, match='but LinearClsHead takes'):
        model(x, mode='tensor')


def test_pooling_neck_and_width_errors():
    resnet = 'resnet/resnet50_8xb32_in1k.py'
    model = _classifier(resnet, _tiny_backbone(out_type='cls_token'))
    with pytest.raises(
            DropinError,
            match=(r"gives \[B, 64\] vectors \(out_type='cls_token'\) but "
                   r'GlobalAveragePooling pools feature maps: set '
                   r"model.backbone.out_type='featmap' or model.neck=None$")):
        model(torch.randn(1, 3, 64, 64), mode='tensor')
    model = _classifier(resnet, _tiny_backbone())
    assert model(torch.randn(1, 3, 64, 64), mode='tensor').shape == (1, 1000)

    # seg: MultiLevelNeck left at the base's ViT-B width, or too few levels
    cfg = Config.fromfile(
        _wheel('mmseg',
               'vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py'))
    cfg.model.pretrained = None
    cfg.model.backbone = _tiny_backbone(out_indices=(0, 1, 1, 1))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    msg = (r'^model.neck \(MultiLevelNeck\) takes in_channels=\[768, 768, '
           r'768, 768\] but EACViT\(embed_dims=64\) gives 64 channels: set '
           r'model.neck.in_channels=\[64, 64, 64, 64\]$')
    with pytest.raises(DropinError, match=msg):
        model.extract_feat(torch.randn(1, 3, 64, 64))
    cfg.model.backbone = _tiny_backbone(out_indices=(0, 1))
    model = MODELS.build(cfg.model)
    with pytest.raises(
            DropinError,
            match=(
                r'takes 4 levels \(in_channels=\[768, 768, 768, 768\]\) but '
                r'EACViT\(embed_dims=64\) returns 2 \(out_indices=\[0, 1\]\)'
            )):
        model.extract_feat(torch.randn(1, 3, 64, 64))


# ------------------------------------------------------- EACViT arguments
def test_avg_featmap_is_mean_of_patch_tokens():
    torch.manual_seed(0)
    fm = EACViT(arch=TINY, max_cores=16, out_indices=(0, 1)).eval()
    avg = EACViT(
        arch=TINY, max_cores=16, out_indices=(0, 1),
        out_type='avg_featmap').eval()
    avg.load_state_dict(fm.state_dict())
    x = torch.randn(2, 3, 48, 80)
    with torch.no_grad():
        maps, vecs = fm(x), avg(x)
    for m, v in zip(maps, vecs):
        assert v.shape == (2, 64)
        torch.testing.assert_close(v, m.mean(dim=(2, 3)))
    with pytest.raises(
            ValueError,
            match=r"out_type must be one of "
            r"\['featmap', 'cls_token', 'avg_featmap'\], "
            r"got 'raw'"):
        EACViT(arch=TINY, max_cores=16, out_type='raw')


def test_pretrained_argument(tmp_path):
    ckpt = str(tmp_path / 'tiny.pth')
    torch.manual_seed(1)
    src = EACViT(arch=TINY, max_cores=16)
    torch.save({'state_dict': src.state_dict()}, ckpt)
    # as mmseg backbones: pretrained -> init_cfg
    model = EACViT(arch=TINY, max_cores=16, pretrained=ckpt)
    assert model.init_cfg == dict(type='Pretrained', checkpoint=ckpt)
    model.init_weights()
    assert _unchanged(model, src.state_dict())
    # init_cfg given too (the base config's model.pretrained): init_cfg wins
    other = EACViT(
        arch=TINY,
        max_cores=16,
        pretrained='pretrain/jx_vit_base_p16_224-80ecf9dd.pth',
        init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    assert other.init_cfg['checkpoint'] == ckpt
    # the base's own, absent ViT checkpoint: mapped, with a warning that
    # says what to set
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    with patch.object(logger, 'log') as log:
        vit = EACViT(arch=TINY, max_cores=16, pretrained='pretrain/vit.pth')
    assert vit.init_cfg == dict(
        type='Pretrained', checkpoint='pretrain/vit.pth')
    said = ' '.join(str(c) for c in log.call_args_list)
    assert 'set model.pretrained=None' in said, said
    with pytest.raises(TypeError, match='pretrained must be a checkpoint'):
        EACViT(arch=TINY, max_cores=16, pretrained=dict(a=1))

    # through mmseg's EncoderDecoder, which passes model.pretrained down
    cfg = Config.fromfile(
        _wheel('mmseg', 'segmenter/segmenter_vit-b_mask_8xb1-160k_ade20k-'
               '512x512.py'))
    assert cfg.model.pretrained.startswith('https://')
    cfg.model.backbone = _tiny_backbone(
        init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    cfg.model.decode_head.in_channels = 64
    init_default_scope('mmseg')
    seg = MODELS.build(cfg.model)
    seg.backbone.init_weights()
    assert _unchanged(seg.backbone, src.state_dict())


# ------------------------------------------------------- weight decay
class _Net(nn.Module):
    """backbone + a head, as the layer-decay constructors expect."""

    def __init__(self):
        super().__init__()
        self.backbone = EACViT(arch=TINY, max_cores=16)
        self.head = nn.Linear(64, 10)

    def get_layer_depth(self, name):  # mmpretrain's ImageClassifier does so
        return self.backbone.get_layer_depth(name, 'backbone.')


def _eac_params(model):
    b = model.backbone
    return [
        *b.core_chunks, *b.core_coord_chunks,
        *(u.alpha for u in b.coord_updates)
    ]


def _group_of(optimizer, param):
    groups = [
        g for g in optimizer.param_groups
        if any(p is param for p in g['params'])
    ]
    assert len(groups) == 1
    return groups[0]


CONSTRUCTORS = [
    ('mmengine', 'DefaultOptimWrapperConstructor', None, 1.0),
    ('mmengine', 'DefaultOptimWrapperConstructor', dict(norm_decay_mult=0.0),
     1.0),
    ('mmseg', 'LearningRateDecayOptimizerConstructor',
     dict(num_layers=12, decay_rate=0.5, decay_type='layer_wise'), 0.5**3),
    ('mmseg', 'LayerDecayOptimizerConstructor',
     dict(num_layers=12, layer_decay_rate=0.5), 0.5**3),
    ('mmdet', 'LearningRateDecayOptimizerConstructor',
     dict(num_layers=12, decay_rate=0.5, decay_type='layer_wise'), 0.5**3),
    ('mmpretrain', 'LearningRateDecayOptimWrapperConstructor',
     dict(layer_decay_rate=0.5), 0.5**3),
    ('mmeac', 'LayerDecayOptimWrapperConstructor', dict(layer_decay_rate=0.5),
     0.5**3),
]


@pytest.mark.parametrize(
    'lib,name,paramwise,patch_scale',
    CONSTRUCTORS,
    ids=[f'{c[0]}-{c[1]}-{i}' for i, c in enumerate(CONSTRUCTORS)])
def test_no_weight_decay_on_eac_params(lib, name, paramwise, patch_scale):
    from mmengine.optim import (DefaultOptimWrapperConstructor,
                                build_optim_wrapper)
    if lib != 'mmengine':
        __import__(f'{lib}.engine')
    model = _Net()
    cfg = dict(
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor=f'{lib}.{name}' if lib in ('mmseg', 'mmdet',
                                               'mmpretrain') else name)
    if paramwise is not None:
        cfg['paramwise_cfg'] = paramwise
    opt = build_optim_wrapper(model, cfg).optimizer
    eac = _eac_params(model)
    assert len(eac) == 2 + 2 + 1
    patch = model.backbone.patch_embed.proj.weight
    for p in eac:
        g = _group_of(opt, p)
        assert g['weight_decay'] == 0.0
    # weights still decay, and the core bank keeps its layer's lr
    assert _group_of(opt, patch)['weight_decay'] == pytest.approx(0.05)
    assert _group_of(opt, model.head.weight)['weight_decay'] == \
        pytest.approx(0.05)
    core = _group_of(opt, model.backbone.core_chunks[0])
    assert core['lr'] == pytest.approx(1e-3 * patch_scale)
    assert _group_of(opt, patch)['lr'] == pytest.approx(1e-3 * patch_scale)
    assert sum(len(g['params'])
               for g in opt.param_groups) == len(list(model.parameters()))

    # without mmeac's wrapper the core bank would decay (upstream default)
    original = DefaultOptimWrapperConstructor.__call__.__wrapped__
    if lib == 'mmengine':
        from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
        ctor = OPTIM_WRAPPER_CONSTRUCTORS.build(
            dict(
                type=name,
                optim_wrapper_cfg=dict(optimizer=cfg['optimizer']),
                paramwise_cfg=paramwise))
        plain = original(ctor, model).optimizer
        assert _group_of(
            plain,
            model.backbone.core_chunks[0])['weight_decay'] == pytest.approx(
                0.05)


def test_user_custom_keys_win():
    from mmengine.optim import build_optim_wrapper
    model = _Net()
    opt = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='SGD', lr=0.1, weight_decay=0.01),
            paramwise_cfg=dict(
                custom_keys={'core_chunks': dict(decay_mult=0.5)}))).optimizer
    assert _group_of(
        opt,
        model.backbone.core_chunks[0])['weight_decay'] == pytest.approx(0.005)
    assert _group_of(
        opt, model.backbone.core_coord_chunks[0])['weight_decay'] == 0.0
    # a key for a whole module (mmseg's Mask2Former: 'backbone' with
    # lr_mult 0.1, decay_mult 1.0) does not opt the cores into decay
    opt = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='AdamW', lr=0.1, weight_decay=0.05),
            paramwise_cfg=dict(
                custom_keys={'backbone': dict(lr_mult=0.1, decay_mult=1.0)
                             }))).optimizer
    core = _group_of(opt, model.backbone.core_chunks[0])
    assert core['weight_decay'] == 0.0
    assert core['lr'] == pytest.approx(0.01)
    assert _group_of(opt, model.backbone.patch_embed.proj.weight
                     )['weight_decay'] == pytest.approx(0.05)


# ------------------------------------------------------- config loading
def _fresh(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (mmeac not imported first)."""
    code = ('import sys\nassert "mmeac" not in sys.modules\n' +
            textwrap.dedent(code))
    return subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=300,
                          cwd=REPO)


def test_environment_has_pkg_resources_pin():
    """setup_env.sh / requirements pin setuptools to one with pkg_resources
    that torch 2.14 accepts."""
    from importlib import metadata

    from packaging.requirements import Requirement
    with open(osp.join(REPO, 'requirements', 'runtime.txt')) as f:
        reqs = [
            Requirement(line.split('#')[0].strip()) for line in f
            if line.split('#')[0].strip()
        ]
    pin = next(r for r in reqs if r.name == 'setuptools')
    torch_req = next(
        Requirement(r) for r in metadata.requires('torch')
        if r.startswith('setuptools'))
    assert '80.9.0' in pin.specifier and '80.9.0' in torch_req.specifier
    assert '81.0.0' not in pin.specifier
    assert metadata.version('setuptools') in pin.specifier, (
        'run tools/setup_env.sh: setuptools '
        f'{metadata.version("setuptools")} has no pkg_resources')


def test_dropin_configs_load_without_importing_mmeac():
    """In a fresh interpreter: every drop-in config loads without mmeac;
    mmdet's own print_config tool, which knows nothing of mmeac, prints a
    derived config (its ``custom_imports`` import mmeac)."""
    tool = osp.join(
        osp.dirname(__import__('mmdet').__file__), '.mim', 'tools', 'misc',
        'print_config.py')
    proc = _fresh(f"""
        import contextlib, glob, io, runpy, warnings
        warnings.simplefilter('ignore')
        from mmengine.config import Config
        paths = sorted(glob.glob('configs/dropin/*.py'))
        assert len(paths) >= 10, paths
        for p in paths:
            cfg = Config.fromfile(p, import_custom_modules=False)
            assert cfg.model.backbone.type == 'EACViT', p
            assert cfg.custom_imports.imports[-1] == 'mmeac', p
        assert 'mmeac' not in sys.modules
        sys.argv = [{tool!r},
                    'configs/dropin/retinanet_eac-b_sfp_1x_coco.py']
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            runpy.run_path(sys.argv[0], run_name='__main__')
        assert "preset='single_stage'" in printed.getvalue()
        assert 'mmeac' in sys.modules  # imported by custom_imports
        cfg = Config.fromfile('configs/dropin/mask2former_eac-b_ade20k-512.py')
        assert cfg.custom_imports.imports == ['mmdet.models', 'mmeac']
        print('OK', len(paths))
        """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith('OK')


def test_in_process_fix_without_pkg_resources():
    """An environment mmeac did not set up (no pkg_resources): mmengine fails
    on 'mmdet::' bases until mmeac is imported (one fresh interpreter)."""
    proc = _fresh("""
        sys.modules['pkg_resources'] = None  # setuptools >= 81
        from mmengine.config import Config
        path = 'configs/dropin/retinanet_eac-b_sfp_1x_coco.py'
        try:
            Config.fromfile(path, import_custom_modules=False)
        except ImportError as err:
            assert 'pkg_resources' in str(err), err
        else:
            raise AssertionError('loaded without pkg_resources')
        import mmeac
        Config.fromfile(path, import_custom_modules=False)
        print('OK')
        """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == 'OK'
