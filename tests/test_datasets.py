"""The built-in synthetic datasets load through the upstream dataset classes.

mmseg's ``ADE20KDataset``, mmdet's ``CocoDataset`` and mmpretrain's
``ImageNet`` / ``CustomDataset`` read the generated data; labels, masks and
pixels agree with each other; generation is deterministic and atomic.
"""
import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
from _tool_helpers import call_tool, run, warm_python
from PIL import Image

import mmeac  # noqa: F401
from mmeac.testing import synthetic
from mmeac.testing.synthetic import (ADE_BACKGROUND_ID, ADE_CLASS_IDS,
                                     COCO_CLASSES, IMAGENET_CLASSES,
                                     IMAGENET_LABELS, SHAPE_CLASSES,
                                     BuiltinDataExistsError, make_ade20k,
                                     make_all, make_coco, make_imagenet,
                                     parse_size)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = 'tools/misc/make_builtin_data.py'
W, H = 160, 128  # non-square on purpose
NUM_TRAIN, NUM_VAL = 12, 5


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    out = tmp_path_factory.mktemp('builtin')
    return make_all(
        str(out),
        size=f'{W}x{H}',
        num_train=NUM_TRAIN,
        num_val=NUM_VAL,
        seed=0)


def _tree_digest(root: str) -> dict:
    digest = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                digest[osp.relpath(path, root)] = hashlib.sha256(
                    f.read()).hexdigest()
    return digest


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` whose 4-neighbours are in ``mask`` too."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def _color_of(ade_id: int) -> np.ndarray:
    cls = next(c for c in SHAPE_CLASSES if c.ade_id == ade_id)
    return np.array(cls.color, dtype=np.float64)


# ---------------------------------------------------------------- ADE20K
def test_ade20k_loads_with_mmseg(roots):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets import ADE20KDataset
    from mmseg.datasets.transforms import LoadAnnotations

    root = roots['ade20k']
    assert root.endswith(osp.join('ade', 'ADEChallengeData2016'))
    for split, sub, n in (('train', 'training', NUM_TRAIN),
                          ('val', 'validation', NUM_VAL)):
        ds = ADE20KDataset(
            data_root=root,
            data_prefix=dict(
                img_path=f'images/{sub}', seg_map_path=f'annotations/{sub}'),
            pipeline=[])
        assert len(ds) == n
        assert len(ds.metainfo['classes']) == 150
        assert ds.reduce_zero_label
    # the ADE class names of the mapping are the real ones
    for cls in SHAPE_CLASSES:
        assert ds.metainfo['classes'][cls.ade_id - 1] == cls.ade_name
    assert ds.metainfo['classes'][ADE_BACKGROUND_ID - 1] == 'floor'

    load_img = LoadImageFromFile()
    load_ann = LoadAnnotations(reduce_zero_label=True)
    allowed = {255, ADE_BACKGROUND_ID - 1} | {i - 1 for i in ADE_CLASS_IDS}
    seen = set()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        results = load_ann(load_img(dict(info)))
        assert results['img'].shape == (H, W, 3)
        seg = results['gt_seg_map']
        assert seg.shape == (H, W)
        values = set(np.unique(seg).tolist())
        assert values <= allowed, values - allowed
        seen |= values
    # objects, background and "other" all occur in the split
    assert 255 in seen and ADE_BACKGROUND_ID - 1 in seen
    assert len(seen & {i - 1 for i in ADE_CLASS_IDS}) >= 3


def test_ade20k_labels_match_pixels(roots):
    root = roots['ade20k']
    img_dir = osp.join(root, 'images', 'training')
    ann_dir = osp.join(root, 'annotations', 'training')
    checked = 0
    for name in sorted(os.listdir(img_dir)):
        img = np.asarray(Image.open(osp.join(img_dir, name)), np.float64)
        label = np.asarray(Image.open(osp.join(ann_dir, name[:-4] + '.png')))
        assert label.dtype == np.uint8
        for ade_id in ADE_CLASS_IDS:
            region = _interior(label == ade_id)
            if region.sum() < 30:
                continue
            # the class follows from the colour of its pixels
            mean = np.median(img[region], axis=0)
            assert np.abs(mean - _color_of(ade_id)).max() < 40, (name, ade_id)
            checked += 1
    assert checked >= 5


# ---------------------------------------------------------------- COCO
def test_coco_loads_with_mmdet(roots):
    from mmdet.datasets import CocoDataset

    root = roots['coco']
    common = dict(
        data_root=root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=[])
    full = CocoDataset(**common, filter_cfg=None)
    assert len(full) == NUM_TRAIN
    assert len(full.metainfo['classes']) == 80
    # image 3 (index ends in 3) has no objects; filter_empty_gt drops it
    empties = [i for i in range(NUM_TRAIN) if i % 10 == 3]
    filtered = CocoDataset(**common, filter_cfg=dict(filter_empty_gt=True))
    assert len(filtered) == NUM_TRAIN - len(empties)

    six = CocoDataset(
        **common, filter_cfg=None, metainfo=dict(classes=COCO_CLASSES))
    assert six.metainfo['classes'] == COCO_CLASSES
    num_instances = 0
    for i in range(NUM_TRAIN):
        a, b = full.get_data_info(i), six.get_data_info(i)
        assert a['img_path'] == b['img_path']
        assert (a['height'], a['width']) == (H, W)
        names_80 = [
            full.metainfo['classes'][x['bbox_label']] for x in a['instances']
        ]
        names_6 = [COCO_CLASSES[x['bbox_label']] for x in b['instances']]
        assert names_80 == names_6  # same labels in both label spaces
        if i in empties:
            assert a['instances'] == []
        num_instances += len(a['instances'])
    assert num_instances >= NUM_TRAIN


def test_coco_masks_are_exact(roots):
    from mmdet.datasets.transforms import LoadAnnotations
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    root = roots['coco']
    coco = COCO(osp.join(root, 'annotations', 'instances_train2017.json'))
    assert {c['id']: c['name'] for c in coco.loadCats(coco.getCatIds())}[37] \
        == 'sports ball'
    kinds = set()
    for img_info in coco.loadImgs(coco.getImgIds()):
        img = np.asarray(
            Image.open(osp.join(root, 'train2017', img_info['file_name'])),
            np.float64)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_info['id']]))
        union = np.zeros((H, W), bool)
        for ann in anns:
            kinds.add(type(ann['segmentation']).__name__)
            mask = coco.annToMask(ann).astype(bool)
            assert ann['iscrowd'] == 0
            assert mask.sum() == ann['area'] > 0
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann['bbox']
            assert (x, y,
                    w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1,
                              ys.max() - ys.min() + 1)
            assert w >= 4 and h >= 4
            assert not (union & mask).any()  # visible masks never overlap
            union |= mask
            cls = next(c for c in SHAPE_CLASSES
                       if c.coco_id == ann['category_id'])
            inner = _interior(mask)
            if inner.sum() >= 20:
                mean = np.median(img[inner], axis=0)
                assert np.abs(mean - np.array(cls.color)).max() < 40
            if isinstance(ann['segmentation'], list):
                # a polygon decodes to exactly the drawn pixels
                rles = mask_utils.frPyObjects(ann['segmentation'], H, W)
                assert (mask_utils.decode(
                    mask_utils.merge(rles)).astype(bool) == mask).all()
    assert kinds == {'list', 'dict'}  # polygons and RLE both occur

    # and mmdet's own loading gives the same masks and boxes
    from mmdet.datasets import CocoDataset
    ds = CocoDataset(
        data_root=root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=None,
        pipeline=[])
    from mmcv.transforms import LoadImageFromFile
    load_img = LoadImageFromFile()
    load = LoadAnnotations(with_bbox=True, with_label=True, with_mask=True)
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        res = load(load_img(dict(info)))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[info['img_id']]))
        assert len(res['gt_masks']) == len(anns)
        np.testing.assert_allclose(res['gt_masks'].areas,
                                   [a['area'] for a in anns])
        boxes = np.array([a['bbox'] for a in anns]).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        np.testing.assert_allclose(res['gt_bboxes'].numpy(), boxes)


# ---------------------------------------------------------------- ImageNet
def test_imagenet_loads_with_mmpretrain(roots):
    from mmpretrain.datasets import CustomDataset, ImageNet

    root = roots['imagenet']
    for split, n in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        in1k = ImageNet(data_root=root, split=split)
        assert len(in1k) == n
        assert len(in1k.CLASSES) == 1000
        scan = CustomDataset(data_root=root, data_prefix=split)
        assert len(scan) == n
        assert scan.CLASSES == IMAGENET_CLASSES
        by_path = {
            scan.get_data_info(i)['img_path']:
            scan.get_data_info(i)['gt_label']
            for i in range(n)
        }
        for i in range(n):
            info = in1k.get_data_info(i)
            folder_label = by_path[info['img_path']]
            assert info['gt_label'] == IMAGENET_LABELS[folder_label]
            assert osp.basename(osp.dirname(
                info['img_path'])) == IMAGENET_CLASSES[folder_label]
            cls = next(c for c in SHAPE_CLASSES
                       if c.imagenet_index == info['gt_label'])
            assert in1k.CLASSES[info['gt_label']].startswith(cls.imagenet_name)
            # one dominant object of the class colour
            img = np.asarray(Image.open(info['img_path']), np.float64)
            assert img.shape == (H, W, 3)
            dist = np.abs(img - np.array(cls.color)).max(axis=2)
            assert (dist < 40).mean() > 0.08
        # classes are balanced: i % 6
        counts = np.bincount(list(by_path.values()), minlength=6)
        assert counts.max() - counts.min() <= 1


# ---------------------------------------------------------------- generator
def test_parse_size():
    assert parse_size(256) == (256, 256)
    assert parse_size('512x384') == (512, 384)
    assert parse_size('1024') == (1024, 1024)
    assert parse_size((300, 200)) == (300, 200)
    for bad in ('abc', '10x', '16', (8, 300)):
        with pytest.raises(ValueError, match='size'):
            parse_size(bad)


def test_deterministic_and_seeded(tmp_path):
    a = make_all(str(tmp_path / 'a'), size=64, num_train=3, num_val=2, seed=5)
    b = make_all(str(tmp_path / 'b'), size=64, num_train=3, num_val=2, seed=5)
    c = make_all(str(tmp_path / 'c'), size=64, num_train=3, num_val=2, seed=6)
    for name in ('ade20k', 'coco', 'imagenet'):
        da, db, dc = (_tree_digest(r[name]) for r in (a, b, c))
        assert len(da) > 5
        assert da == db, name
        assert da.keys() == dc.keys() and da != dc, name
    # more training images only append: the first ones are unchanged
    d = make_ade20k(
        str(tmp_path / 'd'), size=64, num_train=5, num_val=2, seed=5)
    dd, da = _tree_digest(d), _tree_digest(a['ade20k'])
    first = [k for k in da if k.startswith('images') or k.startswith('annot')]
    assert first and all(dd[k] == da[k] for k in first)


def test_large_and_non_square(tmp_path):
    root = make_coco(str(tmp_path), size='1024x768', num_train=1, num_val=1)
    img = Image.open(osp.join(root, 'train2017', '000000000001.jpg'))
    assert img.size == (1024, 768)
    with open(osp.join(root, 'annotations', 'instances_val2017.json')) as f:
        ann = json.load(f)
    assert ann['images'][0]['width'] == 1024
    assert ann['images'][0]['height'] == 768
    assert ann['annotations'] and all(a['area'] > 100
                                      for a in ann['annotations'])


def test_existing_data_is_protected(tmp_path):
    root = make_imagenet(str(tmp_path), size=64, num_train=2, num_val=1)
    before = _tree_digest(root)
    mtime = os.stat(osp.join(root, 'meta', 'train.txt')).st_mtime_ns
    # same parameters: kept as is, nothing rewritten
    assert make_imagenet(
        str(tmp_path), size=64, num_train=2, num_val=1) == root
    assert os.stat(osp.join(root, 'meta', 'train.txt')).st_mtime_ns == mtime
    # different parameters: refused, the old data untouched
    with pytest.raises(BuiltinDataExistsError, match='different data'):
        make_imagenet(str(tmp_path), size=64, num_train=3, num_val=1)
    assert _tree_digest(root) == before
    # force: replaced
    make_imagenet(str(tmp_path), size=64, num_train=3, num_val=1, force=True)
    assert _tree_digest(root) != before
    assert sorted(os.listdir(tmp_path)) == ['imagenet']  # no temp leftovers
    # a foreign non-empty directory is refused as well
    os.makedirs(tmp_path / 'coco')
    (tmp_path / 'coco' / 'mine.txt').write_text('x')
    with pytest.raises(BuiltinDataExistsError):
        make_coco(str(tmp_path), size=64, num_train=1, num_val=1)
    assert os.listdir(tmp_path / 'coco') == ['mine.txt']


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing_save(path, img):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        Image.fromarray(img).save(path, format='JPEG')

    monkeypatch.setattr(synthetic, '_save_jpg', failing_save)
    with pytest.raises(KeyboardInterrupt):
        make_ade20k(str(tmp_path), size=64, num_train=4, num_val=1)
    assert len(calls) == 3
    assert os.listdir(tmp_path / 'ade') == []


def test_cli_matches_api(tmp_path):
    api = make_ade20k(
        str(tmp_path / 'api'), size='96x64', num_train=2, num_val=1, seed=3)
    args = [
        'ade20k', '--out',
        str(tmp_path / 'cli'), '--size', '96x64', '--num-train', '2',
        '--num-val', '1', '--seed', '3'
    ]
    proc = run([warm_python(), osp.join(REPO, TOOL), *args],
               cwd=str(tmp_path),
               timeout=120)
    assert proc.returncode == 0, proc.stderr
    cli = osp.join(tmp_path, 'cli', 'ade', 'ADEChallengeData2016')
    assert cli in proc.stdout
    assert _tree_digest(cli) == _tree_digest(api)
    # a different dataset in the way: one-line error, exit 1, untouched
    # (the tool's own logic: in-process)
    proc = call_tool(TOOL, *args[:-1], '4')
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'already holds different data' in lines[0]
    assert lines[0].startswith('make_builtin_data.py: error: ')
    assert _tree_digest(cli) == _tree_digest(api)
