"""Tiny EAC Mask R-CNN end to end through the tools on built-in COCO data.

``tools/train.py`` trains, checkpoints and resumes, ``tools/test.py`` reports
bbox and segm mAP from mmdet's CocoMetric (checked against pycocotools on
the dumped predictions) at an overridden core budget, and a budget the model
does not have is a clear error (the same on two gloo processes:
``test_distributed.py``). The images are
150 x 110 (non-square, not multiples of 16) and one in ten has no object.
"""
import importlib.util
import os
import os.path as osp
import pickle

import pytest
import torch
from _tool_helpers import REPO, TOOLS, log_text, python_tool, run, train_iters

from mmeac.testing import make_coco

DEMO = osp.join(REPO, 'configs', 'demo',
                'mask-rcnn_eac-tiny_sfp_1xb2-lsj-4it_builtin-coco-128.py')
CLASSES = ('airplane', 'boat', 'sports ball', 'book', 'clock', 'vase')
# random-ish weights after 4 iterations: keep every box for the metric
FAST = ['model.test_cfg.rcnn.score_thr=0.0', 'randomness.seed=0']


def _ckpt(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def _adam_steps(ckpt) -> set:
    return {int(s['step']) for s in ckpt['optimizer']['state'].values()}


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


def _tool_main(name: str, argv):
    """Run ``tools/<name>``'s ``main(argv)`` in this process."""
    spec = importlib.util.spec_from_file_location(f'mmeac_tool_{name[:-3]}',
                                                  osp.join(TOOLS, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(list(argv))


@pytest.fixture(scope='module')
def det_base(tmp_path_factory):
    """A directory with the built-in COCO data under ``data/coco``."""
    base = str(tmp_path_factory.mktemp('det_tools'))
    make_coco(
        osp.join(base, 'data'), size='150x110', num_train=6, num_val=4, seed=0)
    return base


@pytest.fixture(scope='module')
def det_run(det_base):
    """Train 2 iterations, then resume to 4 (validation at 4)."""
    work_dir = osp.join(det_base, 'run')
    a = run(
        python_tool('train.py', DEMO, '--work-dir', work_dir, '--cfg-options',
                    'train_cfg.max_iters=2', *FAST),
        cwd=det_base)
    assert a.returncode == 0, a.stderr[-3000:]
    text_a = log_text(work_dir)
    b = run(
        python_tool('train.py', DEMO, '--work-dir', work_dir, '--resume',
                    '--cfg-options', *FAST),
        cwd=det_base)
    assert b.returncode == 0, b.stderr[-3000:]
    runs = sorted(
        e for e in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, e)))
    with open(osp.join(work_dir, runs[-1], runs[-1] + '.log')) as f:
        text_b = f.read()
    return dict(work_dir=work_dir, text_a=text_a, text_b=text_b)


def test_train_and_resume(det_run):
    work_dir = det_run['work_dir']
    assert train_iters(det_run['text_a']) == [1, 2]
    assert 'resumed epoch: 0, iter: 2' in det_run['text_b']
    assert train_iters(det_run['text_b']) == [3, 4]
    ck2 = _ckpt(osp.join(work_dir, 'iter_2.pth'))
    ck4 = _ckpt(osp.join(work_dir, 'iter_4.pth'))
    assert ck4['meta']['iter'] == 4
    # the AdamW state continued: 4 steps, not 2 (the core bank may have
    # sat out a step under nested dropout, so take the maximum)
    assert max(_adam_steps(ck2)) == 2
    assert max(_adam_steps(ck4)) == 4
    # the model trained between the checkpoints
    key = 'roi_head.bbox_head.fc_cls.weight'
    assert not torch.equal(ck2['state_dict'][key], ck4['state_dict'][key])
    # validation at iteration 4 with mmdet's CocoMetric, bbox and segm
    assert 'coco/bbox_mAP:' in det_run['text_b']
    assert 'coco/segm_mAP:' in det_run['text_b']


def test_test_tool_metrics_at_another_budget(det_run, det_base):
    ckpt = osp.join(det_run['work_dir'], 'iter_4.pth')
    out = osp.join(det_base, 'det8.pkl')
    proc = run(
        python_tool('test.py', DEMO, ckpt, '--work-dir',
                    osp.join(det_base, 'test8'), '--out', out, '--cfg-options',
                    'model.backbone.num_cores=8', *FAST),
        cwd=det_base)
    assert proc.returncode == 0, proc.stderr[-3000:]
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


def test_test_tool_rejects_missing_budget(det_run, det_base, monkeypatch,
                                          capsys):
    monkeypatch.chdir(det_base)
    bad_out = osp.join(det_base, 'bad.pkl')
    with pytest.raises(SystemExit) as exc:
        _tool_main('test.py', [
            DEMO,
            osp.join(det_run['work_dir'], 'iter_4.pth'), '--work-dir',
            osp.join(det_base, 'test_bad'), '--out', bad_out, '--cfg-options',
            'model.backbone.num_cores=12'
        ])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert 'error: model.backbone: num_cores=12 is not a core ' \
        'budget' in err and '[8, 16]' in err
    assert not osp.exists(bad_out)
    assert not osp.exists(osp.join(det_base, 'test_bad'))
