"""``tools/train.py`` and ``tools/test.py`` with the real MMEngine Runner.

A segmentation config shipped in the mmseg wheel (SegFormer-B0, ADE20K),
shrunk through ``--cfg-options``, trains on the built-in ADE20K data,
checkpoints, resumes (iterations, lr schedule and optimizer state continue)
and is evaluated with a real mIoU (``tools/test.py`` run as a command: the
CLI smoke test of segmentation testing); Mask R-CNN from the mmdet wheel
builds and predicts on a built-in COCO image on the CPU; bad input gives
one-line errors and writes nothing. The tools run in-process
(``call_runner_tool``) where a fresh interpreter proves nothing.
"""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from _tool_helpers import (DET_CONFIG, SEG_CONFIG, adam_steps, command_ok,
                           load_ckpt, log_text, make_data,
                           miou_from_predictions, newest_log_text,
                           resolve_config_path, seg_options, tool_error,
                           tool_ok, train_iters, train_lrs)

from mmeac.testing import make_ade20k, make_coco


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    base, ade = make_data(
        tmp_path_factory, make_ade20k, size=128, num_train=8, num_val=4)
    return dict(
        ade=ade,
        coco=make_coco(base, size=256, num_train=2, num_val=4, seed=0))


@pytest.fixture(scope='module')
def seg_run(data, tmp_path_factory):
    """Train 4 iterations (checkpoints at 2 and 4) with tools/train.py."""
    base = str(tmp_path_factory.mktemp('seg'))
    work_dir = osp.join(base, 'run_a')
    tool_ok(base, 'train.py', SEG_CONFIG, '--work-dir', work_dir,
            '--cfg-options', *seg_options(data['ade']))
    return dict(base=base, work_dir=work_dir)


def test_train_checkpoints(seg_run):
    work_dir = seg_run['work_dir']
    for name in ('iter_2.pth', 'iter_4.pth', 'last_checkpoint'):
        assert osp.isfile(osp.join(work_dir, name)), name
    text = log_text(work_dir)
    assert train_iters(text) == [1, 2, 3, 4]
    assert 'Iter(val) [4/4]' in text and 'mIoU' in text
    ckpt = load_ckpt(osp.join(work_dir, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4
    assert adam_steps(ckpt) == {4}


def test_train_dumps_merged_config(seg_run, data):
    from mmengine.config import Config
    dumped = Config.fromfile(
        osp.join(seg_run['work_dir'], osp.basename(SEG_CONFIG.split('::')[1])))
    assert dumped.default_scope == 'mmseg'
    assert dumped.train_cfg.max_iters == 4
    assert dumped.train_dataloader.dataset.data_root == data['ade']
    assert dumped.work_dir == seg_run['work_dir']


def test_resume_from_checkpoint(seg_run, data):
    run_a = seg_run['work_dir']
    run_b = osp.join(seg_run['base'], 'run_b')
    proc = tool_ok(seg_run['base'], 'train.py', SEG_CONFIG,
                   '--work-dir', run_b, '--resume',
                   osp.join(run_a, 'iter_2.pth'), '--amp', '--cfg-options',
                   *seg_options(data['ade']))
    # --amp without CUDA: a warning, then fp32
    assert '--amp needs CUDA' in proc.stdout + proc.stderr
    text_a, text_b = log_text(run_a), log_text(run_b)
    assert 'resumed epoch: 0, iter: 2' in text_b
    # the iteration count continues from the checkpoint ...
    assert train_iters(text_b) == [3, 4]
    # ... and so does the lr schedule (a warm-up: every iteration differs)
    lrs_a, lrs_b = train_lrs(text_a), train_lrs(text_b)
    assert len(set(lrs_a.values())) == 4
    assert lrs_b == {3: lrs_a[3], 4: lrs_a[4]}
    # the optimizer state was restored: AdamW counts 4 steps, not 2
    ckpt_b = load_ckpt(osp.join(run_b, 'iter_4.pth'))
    assert ckpt_b['meta']['iter'] == 4
    assert adam_steps(ckpt_b) == {4}
    ckpt_a2 = load_ckpt(osp.join(run_a, 'iter_2.pth'))
    assert adam_steps(ckpt_a2) == {2}
    # the message hub continues too (same runtime info as the straight run)
    ckpt_a4 = load_ckpt(osp.join(run_a, 'iter_4.pth'))
    assert ckpt_b['message_hub']['runtime_info']['iter'] == \
        ckpt_a4['message_hub']['runtime_info']['iter']

    # --resume without a value: the latest checkpoint of the work dir
    tool_ok(seg_run['base'], 'train.py', SEG_CONFIG, '--work-dir',
            run_b, '--resume', '--cfg-options',
            *seg_options(data['ade'], max_iters=6))
    text_c = newest_log_text(run_b)
    assert 'resumed epoch: 0, iter: 4' in text_c
    assert train_iters(text_c) == [5, 6]
    assert adam_steps(load_ckpt(osp.join(run_b, 'iter_6.pth'))) == {6}


def test_test_reports_miou(seg_run, data):
    """tools/test.py as a command (the CLI smoke test of testing)."""
    base = seg_run['base']
    out = osp.join(base, 'results.pkl')
    show_dir = osp.join(base, 'vis')
    command_ok(base, 'test.py', SEG_CONFIG,
               osp.join(seg_run['work_dir'], 'iter_4.pth'), '--work-dir',
               osp.join(base, 'test_a'), '--out', out, '--show-dir', show_dir,
               '--cfg-options', *seg_options(data['ade']))
    with open(out, 'rb') as f:
        result = pickle.load(f)
    miou = float(result['metrics']['mIoU'])
    assert 'Iter(test) [4/4]' in log_text(osp.join(base, 'test_a'))
    assert len(result['predictions']) == 4
    assert all('seg_logits' not in p and 'gt_sem_seg' not in p
               for p in result['predictions'])
    # the reported mIoU is the mIoU of the dumped predictions
    expected = miou_from_predictions(result['predictions'], data['ade'])
    assert abs(miou - expected) < 0.01, (miou, expected)
    assert 0 < miou <= 100
    # one visualisation per test image
    images = [
        f for _, _, files in os.walk(show_dir) for f in files
        if f.endswith('.png')
    ]
    assert len(images) == 4


def test_mask_rcnn_builds_and_predicts(data, tmp_path):
    from mmdet.apis import inference_detector, init_detector
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    register_all_modules()
    cfg = Config.fromfile(resolve_config_path(DET_CONFIG))
    assert cfg.model.backbone.depth == 50
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.rcnn.score_thr = 0.0  # random weights: keep boxes
    # 100 proposals and 20 boxes, not 1000 and 100: the heads' cost, not
    # what is checked
    cfg.model.test_cfg.rpn.max_per_img = 100
    cfg.model.test_cfg.rcnn.max_per_img = 20
    cfg.test_dataloader.dataset.pipeline[1].scale = (256, 256)
    model = init_detector(cfg, checkpoint=None, device='cpu')
    ckpt = str(tmp_path / 'mask_rcnn_random.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)

    img = osp.join(data['coco'], 'val2017', '000000000001.jpg')
    sample = inference_detector(model, img)
    assert isinstance(sample, DetDataSample)
    pred = sample.pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) > 0
    assert pred.masks.shape[1:] == (256, 256)
    assert len(pred.masks) == len(pred.bboxes) == len(pred.labels)

    # and through tools/test.py on two images (one without objects)
    coco = data['coco']
    out = str(tmp_path / 'det.pkl')
    opts = [
        'model.backbone.init_cfg=None', 'model.test_cfg.rcnn.score_thr=0.0',
        'model.test_cfg.rcnn.max_per_img=20',
        'model.test_cfg.rpn.max_per_img=100',
        'test_dataloader.dataset.pipeline.1.scale=(256,256)',
        f'test_dataloader.dataset.data_root={coco}/',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'test_dataloader.dataset.indices=[0,3]',
        f'test_evaluator.ann_file={coco}/annotations/instances_val2017.json'
    ]
    tool_ok(
        str(tmp_path), 'test.py', DET_CONFIG, ckpt, '--work-dir',
        str(tmp_path / 'wd'), '--out', out, '--show-dir',
        str(tmp_path / 'vis'), '--cfg-options', *opts)
    with open(out, 'rb') as f:
        result = pickle.load(f)
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(result['metrics'])
    assert all(
        np.isfinite(v) for v in result['metrics'].values()
        if isinstance(v, float))
    preds = result['predictions']
    assert len(preds) == 2
    for p in preds:
        inst = p['pred_instances']
        assert inst['bboxes'].shape == (20, 4)
        assert len(inst['masks']) == 20
        assert list(inst['masks'][0]['size']) == [256, 256]
    assert len(os.listdir(tmp_path / 'vis')) == 2


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_missing_config(tool, tmp_path):
    args = ['no/such_config.py'] + (['x.pth'] if tool == 'test.py' else [])
    line = tool_error(str(tmp_path), tool, *args)
    assert line == \
        f"{tool}: error: config file 'no/such_config.py' does not exist"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_missing_data_root(tool, seg_run, tmp_path):
    missing = str(tmp_path / 'no_data' / 'ADEChallengeData2016')
    ckpt = osp.join(seg_run['work_dir'], 'iter_2.pth')
    args = [SEG_CONFIG] + ([ckpt] if tool == 'test.py' else [])
    line = tool_error(
        str(tmp_path), tool, *args, '--cfg-options', *seg_options(missing))
    assert f"dataset root '{missing}'" in line
    assert 'does not exist' in line
    assert os.listdir(tmp_path) == []  # no work_dirs/ created
