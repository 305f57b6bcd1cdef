"""EAC dropped into configs shipped in the mmseg, mmdet and mmpretrain wheels.

For each of 13 upstream configs (UperNet-ViT, Segmenter, SETR-MLA,
Mask2Former; Mask R-CNN, Cascade R-CNN, RetinaNet, FCOS, DINO; ViT cls token,
MAE fine-tune with average pooling, MAE linear probe, ResNet with a pooling
neck) a child config is written exactly as ``docs/dropin.md`` says: the wheel
config as ``_base_``, ``custom_imports`` extending the base's, the backbone
swapped for a tiny EAC (64 wide, 4 blocks, loaded from a checkpoint through
``init_cfg``), the neck for the head family, and the consumer's
``in_channels`` set to EAC's width. Then: build as the Runner does, predict
one image through the config's own test pipeline (sizes shrunk), and one
training step with the config's own optimizer wrapper. The detectors'
proposal, RoI and query counts are cut for the CPU (``_fewer_rois``):
they size the wheel's own heads, which the drop-in does not touch. Checks
and errors are in ``test_dropin_checks.py``.
"""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

import mmeac  # noqa: F401
from mmeac.engine.optimizers import eac_no_decay_params
from mmeac.models import EACViT

D = 64
TINY = dict(embed_dims=D, num_layers=4, num_heads=2, mlp_ratio=2.0)
IMPORTS = """\
__base_imports = _base_.get('custom_imports', {}).get('imports', [])
custom_imports = dict(
    imports=([__base_imports] if isinstance(__base_imports, str) else list(
        __base_imports)) + ['mmeac'],
    allow_failed_imports=False)
"""


def _eac(**kwargs) -> dict:
    return dict(
        _delete_=True,
        type='EACViT',
        arch=TINY,
        max_cores=16,
        init_cfg=dict(type='Pretrained', checkpoint='CKPT'),
        **kwargs)


def _sfp(preset: str) -> dict:
    return dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        preset=preset,
        in_channels=D,
        out_channels=256)


MULTI = (0, 1, 2, 3)
# id: (wheel config, the recipe's model dict)
CASES = {
    # --------------------------------------------------------- segmentation
    'seg-upernet-vit':
    ('mmseg::vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py',
     dict(
         backbone=_eac(out_indices=MULTI),
         neck=dict(
             _delete_=True,
             type='MultiLevelNeck',
             in_channels=[D] * 4,
             out_channels=768,
             scales=[4, 2, 1, 0.5]))),
    'seg-segmenter':
    ('mmseg::segmenter/segmenter_vit-b_mask_8xb1-160k_ade20k-512x512.py',
     dict(backbone=_eac(out_indices=-1), decode_head=dict(in_channels=D))),
    'seg-setr-mla':
    ('mmseg::setr/setr_vit-l-mla_8xb1-160k_ade20k-512x512.py',
     dict(backbone=_eac(out_indices=MULTI), neck=dict(in_channels=[D] * 4))),
    'seg-mask2former':
    ('mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
     dict(
         backbone=_eac(out_indices=MULTI),
         neck=dict(
             type='MultiLevelNeck',
             in_channels=[D] * 4,
             out_channels=D,
             scales=[4, 2, 1, 0.5]),
         decode_head=dict(in_channels=[D] * 4))),
    # ------------------------------------------------------------ detection
    'det-mask-rcnn':
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
     dict(backbone=_eac(out_indices=(3, )), neck=_sfp('two_stage'))),
    'det-cascade-rcnn':
    ('mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
     dict(backbone=_eac(out_indices=(3, )), neck=_sfp('two_stage'))),
    'det-retinanet':
    ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
     dict(backbone=_eac(out_indices=(3, )), neck=_sfp('single_stage'))),
    'det-fcos': ('mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
                 dict(
                     backbone=_eac(out_indices=(3, )),
                     neck=_sfp('single_stage'))),
    'det-dino': ('mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
                 dict(backbone=_eac(out_indices=(3, )), neck=_sfp('detr'))),
    # ------------------------------------------------------- classification
    'cls-vit-cls-token':
    ('mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k-384px.py',
     dict(backbone=_eac(out_type='cls_token'), head=dict(in_channels=D))),
    'cls-mae-finetune-avg':
    ('mmpretrain::mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py',
     dict(backbone=_eac(out_type='avg_featmap'), head=dict(in_channels=D))),
    'cls-mae-linear-probe': ('mmpretrain::mae/benchmarks/'
                             'vit-base-p16_8xb2048-linear-coslr-90e_in1k.py',
                             dict(
                                 backbone=_eac(
                                     out_type='cls_token', frozen_stages=4),
                                 neck=dict(input_features=D),
                                 head=dict(in_channels=D))),
    'cls-resnet-gap': ('mmpretrain::resnet/resnet50_8xb32_in1k.py',
                       dict(backbone=_eac(), head=dict(in_channels=D))),
}


# ----------------------------------------------------------------- helpers
@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    """A tiny EAC checkpoint: the 'pretrained' backbone of every recipe."""
    torch.manual_seed(7)
    backbone = EACViT(arch=TINY, max_cores=16)
    backbone.init_weights()
    path = str(tmp_path_factory.mktemp('dropin') / 'eac-tiny.pth')
    torch.save({'state_dict': backbone.state_dict()}, path)
    return path, {k: v.clone() for k, v in backbone.state_dict().items()}


def _set_ckpt(obj, ckpt: str):
    if isinstance(obj, dict):
        return {k: _set_ckpt(v, ckpt) for k, v in obj.items()}
    return ckpt if obj == 'CKPT' else obj


def _recipe(tmp_path, case: str, ckpt: str) -> Config:
    """Write the documented drop-in config for ``case`` and load it."""
    base, model = CASES[case]
    text = (f'_base_ = {base!r}\n{IMPORTS}'
            f'model = {_set_ckpt(model, ckpt)!r}\n'
            'find_unused_parameters = True\n')
    path = tmp_path / f'{case}.py'
    path.write_text(text)
    return Config.fromfile(str(path))


def _shrink(obj, size: int):
    """Test / preprocessing sizes of a config part down to ``size`` px."""
    if isinstance(obj, dict):
        obj = dict(obj)
        kind = obj.get('type', '')
        if kind == 'Resize' and 'scale' in obj:
            scale = obj['scale']
            obj['scale'] = (size * 4, size) if isinstance(
                scale,
                (tuple, list)) and scale[0] > 2 * scale[1] else (size, size)
        if kind == 'ResizeEdge':
            obj['scale'] = size
        if kind == 'CenterCrop':
            obj['crop_size'] = size
        return obj
    return obj


def _fewer_rois(model_cfg) -> None:
    """100 proposals and 64 sampled RoIs per image and stage (the wheels':
    1000-2000 and 512), 100 DINO queries (900), in place."""
    train = model_cfg.get('train_cfg') or {}
    test = model_cfg.get('test_cfg') or {}
    if 'rpn_proposal' in train:
        train['rpn_proposal'].update(nms_pre=200, max_per_img=100)
    if 'rpn' in test:
        test['rpn'].update(nms_pre=200, max_per_img=100)
    rcnn = train.get('rcnn') or []
    for stage in rcnn if isinstance(rcnn, list) else [rcnn]:
        stage['sampler']['num'] = 64
    if 'num_queries' in model_cfg:  # DINO: picked from the encoder's tokens
        model_cfg['num_queries'] = 100


def _build(cfg: Config, size: int):
    """Build the model as the Runner does, with the training pad size and
    the detectors' RoI counts cut."""
    init_default_scope(cfg.default_scope)
    model_cfg = cfg.model.copy()
    _fewer_rois(model_cfg)
    if cfg.get('data_preprocessor', None) is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    pre = model_cfg.get('data_preprocessor') or {}
    if 'size' in pre:
        pre['size'] = (size, size)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))  # CPU: no SyncBN
    model.init_weights()
    return model


def _predict(model, cfg: Config, img: np.ndarray, size: int):
    steps = []
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'LoadAnnotations':
            continue
        if step['type'] == 'LoadImageFromFile':
            if cfg.default_scope != 'mmpretrain':  # mmpretrain: fed directly
                steps.append(dict(type='LoadImageFromNDArray'))
            continue
        steps.append(_shrink(step, size))
    data = Compose(steps)(
        dict(
            img=img,
            img_shape=img.shape[:2],
            ori_shape=img.shape[:2],
            img_id=0))
    model.eval()
    with torch.no_grad():
        return model.test_step(pseudo_collate([data]))[0]


def _train_batch(task: str, size: int, num_classes: int):
    from mmengine.structures import InstanceData, PixelData
    g = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
        for _ in range(2)
    ]
    meta = dict(img_shape=(size, size), ori_shape=(size, size))
    samples = []
    for i in range(2):
        if task == 'det':
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            s = DetDataSample(metainfo=dict(meta, scale_factor=(1.0, 1.0)))
            box = [8. + 4 * i, 10., 70. + 8 * i, 90.]
            mask = np.zeros((1, size, size), np.uint8)
            mask[0, 10:90, 8 + 4 * i:70 + 8 * i] = 1
            s.gt_instances = InstanceData(
                bboxes=torch.tensor([box]),
                labels=torch.tensor([i + 1]),
                masks=BitmapMasks(mask, size, size))
        elif task == 'seg':
            from mmseg.structures import SegDataSample
            s = SegDataSample(metainfo=meta)
            seg = torch.zeros(1, size, size, dtype=torch.long)
            seg[:, size // 4:, :size // 2] = 3 + i
            s.gt_sem_seg = PixelData(data=seg)
        else:
            from mmpretrain.structures import DataSample
            s = DataSample(metainfo=meta).set_gt_label(i + 2)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _optim_cfg(cfg: Config) -> dict:
    optim = cfg.optim_wrapper.copy()
    if optim.get('type') == 'AmpOptimWrapper':  # needs a GPU; CPU test
        optim['type'] = 'OptimWrapper'
        optim.pop('loss_scale', None)
    return optim


# ------------------------------------------------------------------- test
@pytest.mark.parametrize('case', sorted(CASES))
def test_dropin_upstream(case, tmp_path, tiny_ckpt):
    ckpt, ckpt_state = tiny_ckpt
    task = case.split('-')[0]
    # DINO picks its 100 queries from the encoder's tokens: 4 levels give
    # 340 at 128 x 128 px, more than 100 for the 100 x 140 test image
    size = 128 if task == 'det' else 64
    cfg = _recipe(tmp_path, case, ckpt)
    imports = cfg.custom_imports.imports
    assert imports[-1] == 'mmeac'
    if case == 'seg-mask2former':  # the base's own import is kept
        assert imports == ['mmdet.models', 'mmeac']

    torch.manual_seed(0)
    model = _build(cfg, size)
    backbone = model.backbone
    assert isinstance(backbone, EACViT) and backbone.embed_dims == D
    # the recipe's init_cfg loaded the checkpoint (a base model.pretrained,
    # if any, was ignored)
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, ckpt_state[k]), k

    # ---- predict one non-square image through the config's test pipeline
    img = np.random.RandomState(0).randint(0, 256, (100, 140, 3), np.uint8)
    pred = _predict(model, cfg, img, size)
    assert backbone.last_num_cores == backbone.num_cores == 16
    assert not backbone._forward_pre_hooks  # the drop-in check passed
    if task == 'det':
        assert not model.neck._forward_pre_hooks  # stride check passed
        inst = pred.pred_instances
        n = len(inst.bboxes)
        assert inst.bboxes.shape == (n, 4) and inst.scores.shape == (n, )
        assert torch.isfinite(inst.bboxes).all()
        assert ((inst.scores >= 0) & (inst.scores <= 1)).all()
        if n:
            assert inst.bboxes[:, 0::2].min() >= -1e-3
            assert inst.bboxes[:, 0::2].max() <= 140 + 1e-3
            assert inst.bboxes[:, 1::2].max() <= 100 + 1e-3
        strides = model.neck.strides
        head = getattr(model, 'rpn_head', None) or getattr(
            model, 'bbox_head', None)
        gen = getattr(head, 'prior_generator', None)
        if gen is not None:
            assert [s[0] for s in gen.strides] == strides
        else:  # DETR: the four levels its encoder reads
            assert len(strides) == model.num_feature_levels == 4
    elif task == 'seg':
        seg = pred.pred_sem_seg.data
        assert seg.shape == (1, 100, 140)
        num_classes = model.decode_head.num_classes
        assert seg.min() >= 0 and seg.max() < num_classes
    else:
        score = pred.pred_score
        assert score.shape == (model.head.num_classes, )
        assert float(score.sum()) == pytest.approx(1.0, abs=1e-4)
        assert 0 <= int(pred.pred_label) < model.head.num_classes

    # ---- one training step with the config's own optimizer wrapper
    model.train()
    optim_wrapper = build_optim_wrapper(model, _optim_cfg(cfg))
    optimizer = optim_wrapper.optimizer
    trainable = {
        n: p.detach().clone()
        for n, p in model.named_parameters() if p.requires_grad
    }
    frozen = {
        n: p.detach().clone()
        for n, p in model.named_parameters() if not p.requires_grad
    }
    # EAC's own parameters get no weight decay, whatever the constructor
    eac = eac_no_decay_params(model)
    in_groups = {id(p): g for g in optimizer.param_groups for p in g['params']}
    for pid, name in eac.items():
        if pid in in_groups:
            assert in_groups[pid]['weight_decay'] == 0.0, name
    num_classes = (
        model.head.num_classes if task == 'cls' else
        model.decode_head.num_classes if task == 'seg' else 80)
    data = _train_batch(task, size, num_classes)
    losses = model.train_step(data, optim_wrapper)
    assert losses and all(torch.isfinite(v) for v in losses.values()), losses
    changed = [
        n for n, p in model.named_parameters()
        if n in trainable and not torch.equal(p.detach(), trainable[n])
    ]
    assert changed, 'the training step changed no parameter'
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p.detach(), frozen[n]), n
    if case == 'cls-mae-linear-probe':
        # a frozen EAC: every backbone weight fixed, eval mode throughout
        assert not any(n.startswith('backbone.') for n in trainable)
        assert not backbone.training
        assert all(n.startswith(('neck.', 'head.')) for n in changed)
    else:
        assert any(n.startswith('backbone.') for n in changed)
