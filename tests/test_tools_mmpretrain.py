"""The same tools with an mmpretrain config (default scope ``mmpretrain``).

ResNet-18 from the mmpretrain wheel, unchanged 1000-class head, trains one
epoch on the built-in ImageNet data (real ImageNet-1k labels) and is tested
with ``--out`` and ``--show-dir`` (mmpretrain's ``VisualizationHook``),
both tools in-process (``tests/test_classification.py`` runs them as
commands).
"""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
from _tool_helpers import log_text, make_data, tool_ok

from mmeac.testing import IMAGENET_CLASSES, IMAGENET_LABELS, make_imagenet

CLS_CONFIG = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'


@pytest.fixture(scope='module')
def imagenet(tmp_path_factory):
    return make_data(
        tmp_path_factory, make_imagenet, size=64, num_train=12, num_val=6)[1]


def _options(root: str):
    opts = [
        'train_dataloader.batch_size=4',
        'train_dataloader.dataset.pipeline.1.scale=48',
        'train_cfg.max_epochs=1',
        'default_hooks.logger.interval=1',
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [
            f'{loader}.num_workers=0', f'{loader}.dataset.data_root={root}'
        ]
    for loader in ('val_dataloader', 'test_dataloader'):
        opts += [
            f'{loader}.batch_size=3', f'{loader}.dataset.pipeline.1.scale=56',
            f'{loader}.dataset.pipeline.2.crop_size=48'
        ]
    return opts


def test_train_and_test_classification(imagenet, tmp_path):
    work_dir = str(tmp_path / 'cls')
    tool_ok(
        str(tmp_path), 'train.py', CLS_CONFIG, '--work-dir', work_dir,
        '--cfg-options', *_options(imagenet))
    text = log_text(work_dir)
    assert 'Epoch(train) [1][3/3]' in text  # 12 images, batch 4
    assert 'accuracy/top1' in text
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)

    out = str(tmp_path / 'cls.pkl')
    vis = str(tmp_path / 'vis')
    tool_ok(
        str(tmp_path), 'test.py', CLS_CONFIG, ckpt, '--work-dir',
        str(tmp_path / 'cls_test'), '--out', out, '--show-dir', vis,
        '--cfg-options', *_options(imagenet))
    with open(out, 'rb') as f:
        result = pickle.load(f)
    preds = result['predictions']
    assert len(preds) == 6
    # the reported top-1 accuracy is that of the dumped predictions, against
    # the real ImageNet-1k labels of the built-in data
    correct = []
    for p in preds:
        wnid = osp.basename(osp.dirname(p['img_path']))
        label = IMAGENET_LABELS[IMAGENET_CLASSES.index(wnid)]
        correct.append(int(np.asarray(p['pred_label']).item()) == label)
    top1 = 100.0 * np.mean(correct)
    assert abs(float(result['metrics']['accuracy/top1']) - top1) < 1e-3
    assert all(p['pred_score'].shape == (1000, ) for p in preds)
    assert len(os.listdir(vis)) == 6
