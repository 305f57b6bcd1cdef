"""Tiny EAC Mask R-CNN end to end through the tools on built-in COCO data.

``tools/train.py`` trains, checkpoints and resumes, ``tools/test.py`` reports
bbox and segm mAP from mmdet's CocoMetric (checked against pycocotools on
the dumped predictions) at an overridden core budget, and a budget the model
does not have is a clear error (the same on two gloo processes:
``test_distributed.py``). The images are
150 x 110 (non-square, not multiples of 16) and one in ten has no object.
"""
import os.path as osp
import pickle

import pytest
import torch
from _tool_helpers import (adam_steps, check_resumed, command_ok, config_file,
                           make_data, tool_error, train_then_resume)

from mmeac.testing import make_coco

DEMO = config_file('demo',
                   'mask-rcnn_eac-tiny_sfp_1xb2-lsj-4it_builtin-coco-128.py')
CLASSES = ('airplane', 'boat', 'sports ball', 'book', 'clock', 'vase')
# random-ish weights after 4 iterations: keep every box for the metric
FAST = ['model.test_cfg.rcnn.score_thr=0.0', 'randomness.seed=0']


def _bbox_map_from_predictions(predictions, ann_file):
    """COCO bbox mAP of dumped predictions, computed with pycocotools."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(ann_file)
    cat_ids = gt.getCatIds(catNms=list(CLASSES))
    dets = []
    for p in predictions:
        inst = p['pred_instances']
        for box, score, label in zip(inst['bboxes'].tolist(),
                                     inst['scores'].tolist(),
                                     inst['labels'].tolist()):
            x1, y1, x2, y2 = box
            dets.append(
                dict(
                    image_id=p['img_id'],
                    category_id=cat_ids[label],
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    score=score))
    assert dets, 'no detections to evaluate'
    ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
    ev.params.catIds = cat_ids
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return float(ev.stats[0])


@pytest.fixture(scope='module')
def det_base(tmp_path_factory):
    """A directory with the built-in COCO data under ``data/coco``."""
    return make_data(
        tmp_path_factory, make_coco, size='150x110', num_train=6, num_val=4)[0]


@pytest.fixture(scope='module')
def det_run(det_base):
    """Train 2 iterations (as a command), then resume to 4 (validation at
    4)."""
    return train_then_resume(DEMO, det_base, *FAST)


def test_train_and_resume(det_run):
    ck2, ck4 = check_resumed(det_run)
    # the AdamW state continued: 4 steps, not 2 (the core bank may have
    # sat out a step under nested dropout, so take the maximum)
    assert max(adam_steps(ck2)) == 2
    assert max(adam_steps(ck4)) == 4
    # the model trained between the checkpoints
    key = 'roi_head.bbox_head.fc_cls.weight'
    assert not torch.equal(ck2['state_dict'][key], ck4['state_dict'][key])
    # validation at iteration 4 with mmdet's CocoMetric, bbox and segm
    assert 'coco/bbox_mAP:' in det_run['text_b']
    assert 'coco/segm_mAP:' in det_run['text_b']


def test_test_tool_metrics_at_another_budget(det_run, det_base):
    """tools/test.py as a command (the CLI smoke test of testing)."""
    ckpt = osp.join(det_run['work_dir'], 'iter_4.pth')
    out = osp.join(det_base, 'det8.pkl')
    command_ok(det_base, 'test.py', DEMO, ckpt, '--work-dir',
               osp.join(det_base, 'test8'), '--out', out, '--cfg-options',
               'model.backbone.num_cores=8', *FAST)
    with open(out, 'rb') as f:
        result = pickle.load(f)
    metrics = result['metrics']
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
                'coco/segm_mAP_50'):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    preds = result['predictions']
    assert sorted(p['img_id'] for p in preds) == [1, 2, 3, 4]
    for p in preds:  # masks in the original 150 x 110 geometry
        assert len(p['pred_instances']['masks']) > 0
        assert all(m['size'] == [110, 150]
                   for m in p['pred_instances']['masks'])
    # the reported bbox mAP is pycocotools' on the dumped predictions
    expected = _bbox_map_from_predictions(
        preds,
        osp.join(det_base, 'data', 'coco', 'annotations',
                 'instances_val2017.json'))
    assert metrics['coco/bbox_mAP'] == pytest.approx(expected, abs=1e-3)


def test_test_tool_rejects_missing_budget(det_run, det_base):
    bad_out = osp.join(det_base, 'bad.pkl')
    line = tool_error(det_base, 'test.py', DEMO,
                      osp.join(det_run['work_dir'],
                               'iter_4.pth'), '--work-dir',
                      osp.join(det_base, 'test_bad'), '--out', bad_out,
                      '--cfg-options', 'model.backbone.num_cores=12')
    assert 'error: model.backbone: num_cores=12 is not a core ' \
        'budget' in line and '[8, 16]' in line
    assert not osp.exists(bad_out)
    assert not osp.exists(osp.join(det_base, 'test_bad'))
