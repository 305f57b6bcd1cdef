"""Detection with EAC: simple feature pyramid and Mask R-CNN configs.

The neck's levels; every Mask R-CNN config builds under mmdet's scope with
the settings it promises; EAC-B Mask R-CNN runs an inference forward at
1024 px on the CPU; images of any size and aspect ratio go through the tiny
model, whose core budget is overridable (a budget it lacks is a clear
error); degenerate COCO annotations and images without objects train.
The runs through the tools are in ``test_detection_tools.py``.
"""
import glob
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from _tool_helpers import (DET_CONFIG, build_model, config_file,
                           fresh_runner_state, load_cfg, load_mmeac_cfg,
                           make_data, plain, predict, resolve_config_path)

from mmeac.testing import make_coco

DEMO = config_file('demo',
                   'mask-rcnn_eac-tiny_sfp_1xb2-lsj-4it_builtin-coco-128.py')
MAIN = {
    a: config_file('eac', f'mask-rcnn_eac-{a}_sfp_8xb8-lsj-100e_coco-1024.py')
    for a in 'sbl'
}
DROPIN = config_file('dropin', 'mask-rcnn_eac-b_sfp_1x_coco.py')
# the EAC-B Mask R-CNN config's model at 64 channels (the demo's widths)
NARROW = {
    'model.backbone.arch':
    dict(
        _delete_=True, embed_dims=64, num_layers=2, num_heads=4,
        mlp_ratio=2.0),
    'model.backbone.out_indices': (1, ),
    'model.neck.in_channels':
    64,
    'model.neck.out_channels':
    64,
    'model.rpn_head.in_channels':
    64,
    'model.rpn_head.feat_channels':
    64,
    'model.roi_head.bbox_roi_extractor.out_channels':
    64,
    'model.roi_head.bbox_head.in_channels':
    64,
    'model.roi_head.mask_roi_extractor.out_channels':
    64,
    'model.roi_head.mask_head.in_channels':
    64,
    'model.roi_head.mask_head.conv_out_channels':
    64,
}
DET_CONFIGS = sorted(
    glob.glob(config_file('eac', 'mask-rcnn_eac-*.py')) +
    glob.glob(config_file('dropin', 'mask-rcnn_*.py')) +
    glob.glob(config_file('demo', 'mask-rcnn_*.py')))


# ----------------------------------------------------------------- helpers
def _predict(model, cfg, img: np.ndarray):
    """Run one BGR image through the config's test pipeline and the model."""
    steps = [
        dict(s) for s in cfg.test_pipeline if s['type'] != 'LoadAnnotations'
    ]
    steps[0] = dict(type='LoadImageFromNDArray')
    return predict(model, steps, dict(img=img, img_id=0))


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def det_base(tmp_path_factory):
    """A directory with the built-in COCO data under ``data/coco``."""
    return make_data(
        tmp_path_factory, make_coco, size='150x110', num_train=6, num_val=4)[0]


# ---------------------------------------------------- SimpleFeaturePyramid
def test_simple_feature_pyramid_levels():
    from mmengine.registry import MODELS

    import mmeac  # noqa: F401
    neck = MODELS.build(
        dict(type='SimpleFeaturePyramid', in_channels=32, out_channels=16))
    neck.init_weights()
    # a 5 x 7 patch map (an 80 x 112 image): odd sizes keep their border
    outs = neck((torch.randn(2, 32, 5, 7), ))
    assert [tuple(o.shape[2:]) for o in outs] == [(20, 28), (10, 14), (5, 7),
                                                  (3, 4), (2, 2)]
    assert all(o.shape[:2] == (2, 16) for o in outs)
    # each level is normalised per position (LayerNorm over channels)
    std = outs[2].std(dim=1, unbiased=False)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-2)
    # every level is a function of the input map (gradients reach it)
    x = torch.randn(1, 32, 4, 4, requires_grad=True)
    for level in neck([x]):
        grad, = torch.autograd.grad(level.square().sum(), x, retain_graph=True)
        assert grad.abs().sum() > 0


def test_simple_feature_pyramid_several_blocks_and_errors():
    from mmeac.models.necks import SimpleFeaturePyramid
    neck = SimpleFeaturePyramid(
        in_channels=8,
        out_channels=8,
        scale_factors=(2.0, 1.0),
        num_outs=3,
        in_index=(0, 2),
        norm_cfg=dict(type='GN', num_groups=2))
    feats = (torch.randn(1, 8, 6, 6), torch.zeros(1, 8, 6,
                                                  6), torch.randn(1, 8, 6, 6))
    outs = neck(feats)
    assert [tuple(o.shape[2:]) for o in outs] == [(12, 12), (6, 6), (3, 3)]
    # level 1 reads block 2, not block 1 (which is all zeros)
    assert outs[1].abs().sum() > 0
    with pytest.raises(ValueError, match='scale_factors'):
        SimpleFeaturePyramid(in_channels=8, scale_factors=(3.0, ))
    with pytest.raises(ValueError, match='descending'):
        SimpleFeaturePyramid(in_channels=8, scale_factors=(1.0, 2.0))
    with pytest.raises(ValueError, match='num_outs'):
        SimpleFeaturePyramid(in_channels=8, num_outs=2)
    with pytest.raises(ValueError, match='one backbone output per scale'):
        SimpleFeaturePyramid(in_channels=8, in_index=(0, 1))
    with pytest.raises(ValueError, match=r'\[B, 8, H, W\]'):
        SimpleFeaturePyramid(in_channels=8)((torch.randn(1, 4, 6, 6), ))
    with pytest.raises(ValueError, match='out of range'):
        neck(feats[:2])


# ------------------------------------------------------------------ configs
def test_all_det_configs_found():
    names = {osp.basename(p) for p in DET_CONFIGS}
    assert {osp.basename(p) for p in MAIN.values()} <= names
    assert osp.basename(DROPIN) in names and osp.basename(DEMO) in names


@pytest.mark.parametrize('path', DET_CONFIGS, ids=osp.basename)
def test_det_config_builds(path):
    cfg = load_mmeac_cfg(path, 'mmdet')
    assert cfg.find_unused_parameters is True
    model = build_model(cfg, meta=True)
    assert type(model).__name__ == 'MaskRCNN'
    assert type(model.backbone).__name__ == 'EACViT'
    assert type(model.neck).__name__ == 'SimpleFeaturePyramid'
    assert model.neck.in_channels == model.backbone.embed_dims
    assert model.neck.num_outs == 5  # strides 4 .. 64, as the RPN expects
    assert model.backbone.out_indices == [model.backbone.num_layers - 1]
    assert model.backbone.frozen_stages == -1  # fine-tuned
    assert model.backbone.train_num_cores is None  # nested dropout on
    assert {'bbox', 'segm'} <= set(cfg.val_evaluator.metric)
    assert cfg.val_evaluator.type == 'CocoMetric'


@pytest.mark.parametrize('arch,dims,layers,rate', [('s', 384, 12, 0.7),
                                                   ('b', 768, 12, 0.7),
                                                   ('l', 1024, 24, 0.8)])
def test_mask_rcnn_lsj_recipe(arch, dims, layers, rate):
    from mmengine.optim import build_optim_wrapper
    cfg = load_cfg(MAIN[arch])
    assert cfg.model.neck.in_channels == dims
    bb = cfg.model.backbone
    assert (bb.arch, bb.out_indices) == (arch, (layers - 1, ))
    assert bb.init_cfg == dict(
        type='Pretrained', checkpoint=f'checkpoints/eac-{arch}_veca.pth')
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    # large-scale jitter at 1024
    steps = {s['type']: s for s in cfg.train_pipeline}
    assert steps['RandomResize']['scale'] == (1024, 1024)
    assert steps['RandomResize']['ratio_range'] == (0.1, 2.0)
    assert steps['RandomCrop']['crop_size'] == (1024, 1024)
    assert steps['RandomCrop']['crop_type'] == 'absolute_range'
    assert steps['RandomCrop']['recompute_bbox']
    assert steps['RandomCrop']['allow_negative_crop']
    assert steps['FilterAnnotations']['min_gt_bbox_wh'] == (1e-2, 1e-2)
    assert steps['Pad']['size'] == (1024, 1024)
    assert 'RandomFlip' in steps
    test_steps = {s['type']: s for s in cfg.test_pipeline}
    assert test_steps['Resize']['scale'] == (1024, 1024)
    assert test_steps['Resize']['keep_ratio']
    pre = cfg.model.data_preprocessor
    assert pre.pad_size_divisor == 1024  # test images -> 1024 canvas
    assert pre.batch_augments == [
        dict(type='BatchFixedSizePad', size=(1024, 1024), pad_mask=True)
    ]
    # AdamW + layer-wise lr decay, as built from the config
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    model = build_model(cfg, meta=True)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = wrapper.optimizer.param_groups
    patch = next(
        g for g in groups if any(p is model.backbone.patch_embed.proj.weight
                                 for p in g['params']))
    head = next(
        g for g in groups if any(p is model.roi_head.bbox_head.fc_cls.weight
                                 for p in g['params']))
    core = next(
        g for g in groups
        if any(p is model.backbone.core_chunks[0] for p in g['params']))
    assert head['lr'] == pytest.approx(1e-4)
    assert head['weight_decay'] == pytest.approx(0.1)
    assert patch['lr'] == pytest.approx(1e-4 * rate**(layers + 1))
    assert core['weight_decay'] == 0.0


def test_dropin_swaps_only_backbone_and_neck():
    from mmdet.utils import register_all_modules  # noqa: F401
    upstream = load_cfg(resolve_config_path(DET_CONFIG))  # R50 Mask R-CNN
    cfg = load_cfg(DROPIN)
    for key in ('rpn_head', 'roi_head', 'train_cfg', 'test_cfg',
                'data_preprocessor'):
        assert plain(cfg.model[key]) == plain(upstream.model[key]), key
    for key in ('train_dataloader', 'val_evaluator', 'optim_wrapper',
                'param_scheduler', 'train_cfg'):
        assert plain(cfg[key]) == plain(upstream[key]), key
    assert cfg.model.backbone.type == 'EACViT'


# --------------------------------------------------------------- inference
def test_eac_b_mask_rcnn_1024_inference():
    """EAC-B Mask R-CNN, one 701 x 997 image resized and padded to 1024.

    The EAC-B backbone, the pyramid and the RPN head run at 1024 on the
    ``meta`` device (the shapes are the point); the whole detector of the
    same config at 64 channels predicts for real (its pipeline, budgets and
    post-processing: boxes and masks in the image).
    """
    from mmdet.structures import DetDataSample
    cfg = load_cfg(MAIN['b'], {'model.test_cfg.rcnn.score_thr': 0.0})
    model = build_model(cfg, meta=True)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(
            torch.empty(1, 3, 1024, 1024, device='meta'))
    assert model.backbone.embed_dims == 768
    assert model.backbone.last_num_cores == 64
    levels = [(1024 // s, 1024 // s) for s in (4, 8, 16, 32, 64)]
    assert [tuple(f.shape) for f in feats] == [(1, 256, *hw) for hw in levels]
    with torch.no_grad():
        scores, boxes = model.rpn_head(feats)
    assert [tuple(s.shape[-2:]) for s in scores] == levels
    assert [tuple(b.shape[-2:]) for b in boxes] == levels

    cfg = load_cfg(MAIN['b'], {'model.test_cfg.rcnn.score_thr': 0.0, **NARROW})
    torch.manual_seed(0)
    model = build_model(cfg)  # random weights: no checkpoint on the CPU runner
    img = np.random.RandomState(0).randint(0, 255, (701, 997, 3), np.uint8)
    sample, data = _predict(model, cfg, img)
    assert isinstance(sample, DetDataSample)
    assert sample.batch_input_shape == (1024, 1024)
    assert sample.img_shape == (720, 1024)  # 701 x 997 scaled by 1024 / 997
    assert model.backbone.last_num_cores == 64
    pred = sample.pred_instances
    n = len(pred.bboxes)
    assert 0 < n <= 100
    assert pred.bboxes.shape == (n, 4) and pred.scores.shape == (n, )
    assert pred.masks.shape == (n, 701, 997) and pred.masks.dtype == torch.bool
    # boxes are in original image coordinates, inside the image
    assert pred.bboxes[:, 0::2].min() >= 0 and pred.bboxes[:,
                                                           0::2].max() <= 997
    assert pred.bboxes[:, 1::2].min() >= 0 and pred.bboxes[:,
                                                           1::2].max() <= 701


def test_tiny_det_any_image_size_and_budgets():
    """Odd sizes and aspect ratios; the budget override; a bad budget."""
    cfg = load_cfg(DEMO, {'model.test_cfg.rcnn.score_thr': 0.0})
    torch.manual_seed(0)
    model = build_model(cfg)
    for h, w in ((37, 203), (150, 110), (17, 17)):
        img = np.random.RandomState(h).randint(0, 255, (h, w, 3), np.uint8)
        sample, _ = _predict(model, cfg, img)
        assert sample.batch_input_shape == (128, 128)
        assert sample.pred_instances.masks.shape[1:] == (h, w)
        assert model.backbone.last_num_cores == 16

    cfg8 = load_cfg(DEMO, {'model.backbone.num_cores': 8})
    model8 = build_model(cfg8)
    _predict(model8, cfg8, np.zeros((50, 90, 3), np.uint8))
    assert model8.backbone.last_num_cores == 8
    with pytest.raises(ValueError, match=r'num_cores=24 .*\[8, 16\]'):
        build_model(load_cfg(DEMO, {'model.backbone.num_cores': 24}))


# ------------------------------------------------------------ bad input
def _degenerate_coco(base: str) -> str:
    """A copy of the built-in train split with degenerate annotations."""
    src = osp.join(base, 'data', 'coco')
    root = osp.join(base, 'degenerate')
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    if not osp.isdir(osp.join(root, 'train2017')):
        shutil.copytree(
            osp.join(src, 'train2017'), osp.join(root, 'train2017'))
    with open(osp.join(src, 'annotations', 'instances_train2017.json')) as f:
        coco = json.load(f)
    images = coco['images']
    anns = []

    def add(image, bbox, seg, area, cat=9, crowd=0):
        anns.append(
            dict(
                id=len(anns) + 1,
                image_id=image['id'],
                category_id=cat,
                bbox=bbox,
                segmentation=seg,
                area=area,
                iscrowd=crowd))

    # image 0: only degenerate objects (all must be dropped or ignored)
    im = images[0]
    add(im, [10, 10, 0, 0], [[10, 10, 10, 10, 10, 10]], 0)  # zero size
    add(im, [10, 10, 0.5, 20], [[10, 10, 10.5, 10, 10.5, 30]], 5)  # thin
    add(im, [500, 500, 20, 20], [[500, 500, 520, 500, 520, 520]], 400)  # out
    add(im, [20, 20, -5, 10], [[20, 20, 15, 20, 15, 30]], 25)  # negative
    add(im, [30, 30, 10, 10], [[30, 30, 40, 40]], 50)  # 2-point polygon
    add(im, [40, 40, 10, 10], [[40, 40, 45, 45, 50, 50]], 1)  # collinear
    # image 1: a 1-pixel object, one crossing the border, one crowd
    im = images[1]
    add(im, [5, 5, 1, 1], [[5, 5, 6, 5, 6, 6, 5, 6]], 1)
    add(im, [-10, -10, 30, 30], [[-10, -10, 20, -10, 20, 20, -10, 20]], 400)
    add(im, [60, 40, 20, 20], [[60, 40, 80, 40, 80, 60, 60, 60]], 400, crowd=1)
    # image 2: kept as in the built-in data; the rest: no annotations
    anns += [
        dict(a, id=len(anns) + 1 + i) for i, a in enumerate(
            a for a in coco['annotations'] if a['image_id'] == images[2]['id'])
    ]
    coco['annotations'] = anns
    with open(osp.join(root, 'annotations', 'instances_train2017.json'),
              'w') as f:
        json.dump(coco, f)
    return root


def test_degenerate_annotations_train(det_base, tmp_path):
    from mmengine.runner import Runner
    root = _degenerate_coco(det_base)
    # 3 iterations of 2 images: one pass over the 6 (shuffled) images
    cfg = load_cfg(
        DEMO, {
            'train_dataloader.dataset.data_root': root + '/',
            'train_cfg.max_iters': 3,
            'train_cfg.val_interval': 100,
            'default_hooks.checkpoint.interval': 100,
            'randomness.seed': 1,
        })
    cfg.work_dir = str(tmp_path)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    with fresh_runner_state():
        runner = Runner.from_cfg(cfg)
        runner.train()
        losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert runner.iter == 3
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    # images 3.. have no annotation at all and were kept for training
    dataset = runner.train_dataloader.dataset
    assert len(dataset) == 6
    assert [len(dataset.get_data_info(i)['instances'])
            for i in range(6)][3:] == [0, 0, 0]
    # what reaches the pipeline: 2-point polygon and collinear polygon on
    # image 0 (sizes < 1 px, areas <= 0 and boxes outside the image are
    # dropped by the dataset), the 1-pixel, border and crowd objects on
    # image 1
    assert len(dataset.get_data_info(0)['instances']) == 2
    assert len(dataset.get_data_info(1)['instances']) == 3
