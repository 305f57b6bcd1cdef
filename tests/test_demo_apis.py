"""Image demo and inference API on the tiny demo configs.

Nothing is trained: each test model is built from its config with random
weights and saved as a checkpoint (with class names in its meta, as the
Runner saves them). ``demo/image_demo.py`` runs the segmentor, the detector
and the classifier and draws over the image; :class:`EACInferencer` gives
the same predictions as the upstream inferencers it wraps, which also run
directly on the mmeac configs; budgets, folders (progress bar), arrays and
the whole-image mode work; bad input fails with one line and writes
nothing.

The demo runs in-process through its ``main(argv)`` (``call_tool``); one
run, the folder with its progress bar, is a real subprocess (CLI smoke).
"""
import os
import os.path as osp
import subprocess
import sys

import mmcv
import numpy as np
import pytest
import torch
from _tool_helpers import (REPO, call_tool, run, run_error_line, tool_env,
                           warm_python)

DEMO = osp.join(REPO, 'demo', 'image_demo.py')
CONFIGS = dict(
    seg=osp.join(REPO, 'configs', 'demo',
                 'upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py'),
    det=osp.join(REPO, 'configs', 'demo',
                 'mask-rcnn_eac-tiny_sfp_1xb2-lsj-4it_builtin-coco-128.py'),
    cls=osp.join(REPO, 'configs', 'demo',
                 'linear-probe_eac-tiny_1xb4-4it_builtin-in1k-64px.py'))


def _classes(task, model):
    if task == 'seg':
        n = model.decode_head.num_classes
    elif task == 'det':
        n = model.roi_head.bbox_head.num_classes
    else:
        n = model.head.num_classes
    return tuple(f'{task}class{i}' for i in range(n))


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """A random-weight checkpoint per task, saved like the Runner does."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import mmeac  # noqa: F401
    root = tmp_path_factory.mktemp('ckpts')
    out = {}
    for task, config in CONFIGS.items():
        cfg = Config.fromfile(config)
        init_default_scope(cfg.default_scope)
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        if task == 'det':  # confident boxes: the drawing shows them
            with torch.no_grad():
                model.roi_head.bbox_head.fc_cls.bias[0] = 6.0
        path = str(root / f'{task}.pth')
        torch.save(
            dict(
                state_dict=model.state_dict(),
                meta=dict(dataset_meta=dict(classes=_classes(task, model)))),
            path)
        out[task] = path
    return out


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp('imgs')
    rng = np.random.RandomState(0)
    paths = []
    for i, (h, w) in enumerate([(72, 96), (64, 64)]):
        img = (rng.rand(h, w, 3) * 255).astype(np.uint8)
        img[:h // 2] //= 3  # some structure
        path = str(root / f'img{i}.png')
        mmcv.imwrite(img, path)
        paths.append(path)
    return paths


def _snapshot(folder):
    return sorted(
        (osp.relpath(osp.join(d, f), folder), os.stat(osp.join(d, f)).st_size)
        for d, _, files in os.walk(folder) for f in files)


# ------------------------------------------------------------------ demo
@pytest.mark.parametrize('task', ['seg', 'det', 'cls'])
def test_demo_draws_each_task(task, ckpts, images, tmp_path):
    out = tmp_path / 'vis' / f'{task}.png'
    argv = [
        images[0], CONFIGS[task], ckpts[task], '--out-file',
        str(out), '--num-cores', '8', '--device', 'cpu'
    ]
    res = call_tool(DEMO, *argv, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    assert f'{task} model, 8 cores, 1 image(s)' in res.stdout
    drawn = mmcv.imread(str(out))
    src = mmcv.imread(images[0])
    assert drawn.shape == src.shape  # drawn over the image, same size
    # the visualizer drew something over the image
    assert np.abs(drawn.astype(int) - src.astype(int)).sum() > 0
    # one summary line naming the checkpoint's classes
    line = [x for x in res.stdout.splitlines() if x.startswith(images[0])]
    assert len(line) == 1 and f'{task}class' in line[0], res.stdout
    if task == 'det':
        assert 'detections with score >= 0.3: detclass0' in line[0]
    # only the requested file was written
    assert _snapshot(str(tmp_path / 'vis')) == [(f'{task}.png',
                                                 out.stat().st_size)]


def test_demo_folder_with_progress_bar(ckpts, images, tmp_path):
    """A real subprocess: the command line as users run it."""
    folder = osp.dirname(images[0])
    (tmp_path / 'notes.txt').write_text('not an image')
    out_dir = tmp_path / 'vis'
    res = run([
        warm_python(), DEMO, folder, CONFIGS['seg'], ckpts['seg'], '--out-dir',
        str(out_dir), '--device', 'cpu'
    ],
              cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    assert '2 image(s)' in res.stdout
    assert 'mmeac seg inference' in res.stderr and '2/2' in res.stderr
    assert sorted(os.listdir(out_dir)) == ['img0.png', 'img1.png']
    for path in images:
        name = osp.basename(path)
        assert mmcv.imread(str(out_dir /
                               name)).shape == mmcv.imread(path).shape


BAD_CASES = {
    'missing image': (lambda d, imgs: [str(d / 'nope.jpg')],
                      'image {d}/nope.jpg does not exist'),
    'not an image': (lambda d, imgs: [str(d / 'fake.png')], 'is not an image'),
    'budget': (lambda d, imgs: [imgs[0], '--num-cores', '12'],
               'num_cores=12 is not a core budget of this model'),
    # a checkpoint of another model: refused, not predicted with silently
    'wrong checkpoint':
    (lambda d, imgs:
     [imgs[0], '--cfg-options', 'model.decode_head.num_classes=3'],
     'does not fit the model of config'),
    # a drawing that is already there is the user's: not replaced unasked
    'existing out-file':
    (lambda d, imgs: _user_file(d / 'out' / 'x.png') and [imgs[0]],
     '{d}/out/x.png exists; pass --overwrite'),
}


def _user_file(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'a file the user made')
    return True


@pytest.mark.parametrize('case', sorted(BAD_CASES))
def test_demo_bad_input_one_line_nothing_written(case, ckpts, images,
                                                 tmp_path):
    (tmp_path / 'fake.png').write_text('plain text, not a PNG')
    args, msg = BAD_CASES[case]
    extra = args(tmp_path, images)
    img, rest = extra[0], extra[1:]
    before = _snapshot(str(tmp_path))
    argv = [
        img, CONFIGS['seg'], ckpts['seg'], '--out-file',
        str(tmp_path / 'out' / 'x.png'), *rest
    ]
    res = call_tool(DEMO, *argv, cwd=str(tmp_path))
    assert msg.format(d=tmp_path) in run_error_line(res, 'image_demo.py')
    assert _snapshot(str(tmp_path)) == before


# ------------------------------------------------------------------- API
@pytest.fixture(scope='module')
def seg_inferencer(ckpts):
    from mmeac.apis import EACInferencer
    return EACInferencer(CONFIGS['seg'], ckpts['seg'], device='cpu')


def test_api_matches_upstream_inferencer_on_mmeac_config(
        seg_inferencer, ckpts, images):
    """The upstream inferencer runs an mmeac config directly (after
    ``import mmeac``) and predicts what the wrapper predicts."""
    from mmseg.apis import MMSegInferencer
    up = MMSegInferencer(CONFIGS['seg'], ckpts['seg'], device='cpu')
    ref = up(images[0], return_datasamples=True)
    ours = seg_inferencer(images[0])[0]
    assert torch.equal(ref.seg_logits.data, ours.seg_logits.data)
    assert ours.pred_sem_seg.shape == mmcv.imread(images[0]).shape[:2]
    assert seg_inferencer.model.dataset_meta['classes'][0] == 'segclass0'


@pytest.mark.parametrize('task', ['det', 'cls'])
def test_api_matches_upstream_det_cls(task, ckpts, images):
    from mmeac.apis import EACInferencer
    ours = EACInferencer(CONFIGS[task], ckpts[task], device='cpu')
    pred = ours(images[0])[0]
    if task == 'det':
        from mmdet.apis import DetInferencer
        up = DetInferencer(CONFIGS[task], ckpts[task], device='cpu')
        ref = up(images[0], return_datasamples=True)['predictions'][0]
        assert torch.equal(ref.pred_instances.bboxes,
                           pred.pred_instances.bboxes)
        assert len(pred.pred_instances) > 0
    else:
        from mmpretrain.apis import ImageClassificationInferencer
        up = ImageClassificationInferencer(
            CONFIGS[task], pretrained=ckpts[task], device='cpu')
        ref = up(images[0], return_datasamples=True)[0]
        torch.testing.assert_close(ref.pred_score, pred.pred_score)
        assert 'clsclass' in ours.summarize(pred)


def test_api_budget_arrays_and_folders(seg_inferencer, images):
    inf = seg_inferencer
    assert inf.budgets == (8, 16)
    assert inf.num_cores == 16
    img = mmcv.imread(images[0])
    by_path = inf(images[0], num_cores=8)[0]
    by_array = inf(img, num_cores=8)[0]
    assert torch.equal(by_path.seg_logits.data, by_array.seg_logits.data)
    full = inf(images[0])[0]
    assert inf.num_cores == 16  # the per-call budget was restored
    assert not torch.allclose(full.seg_logits.data, by_path.seg_logits.data)
    inf.num_cores = 8
    try:
        assert torch.equal(
            inf(images[0])[0].seg_logits.data, by_path.seg_logits.data)
    finally:
        inf.num_cores = 16
    preds = inf(osp.dirname(images[0]), show_progress=False)
    assert [p.pred_sem_seg.shape
            for p in preds] == [mmcv.imread(p).shape[:2] for p in images]
    drawn = inf.visualize(images[0], full)
    assert drawn.shape == img.shape and drawn.dtype == np.uint8


def test_api_bad_input(seg_inferencer, images, tmp_path):
    from mmeac.apis import EACInferencer
    inf = seg_inferencer
    with pytest.raises(ValueError, match=r'one of \[8, 16\]'):
        inf(images[0], num_cores=24)
    assert inf.num_cores == 16
    with pytest.raises(FileNotFoundError, match='does not exist'):
        inf(str(tmp_path / 'missing.png'))
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'\x00' * 64)
    with pytest.raises(ValueError, match='is not an image'):
        inf([images[0], str(bad)])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='holds no image files'):
        inf(str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='HxWx3'):
        inf(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match='default_scope'):
        from mmengine.config import Config
        EACInferencer(Config(dict(model=dict())))
    assert sorted(os.listdir(tmp_path)) == ['bad.jpg', 'empty']


def _backbone_input_shapes(inferencer, img):
    seen = []
    hook = inferencer.model.backbone.register_forward_pre_hook(
        lambda m, args: seen.append(tuple(args[0].shape[-2:])))
    try:
        pred = inferencer(img)[0]
    finally:
        hook.remove()
    return seen, pred


def test_whole_image_mode_runs_at_native_resolution(ckpts, seg_inferencer):
    """No resize, one pass: the backbone sees the whole (padded) image."""
    from mmeac.apis import EACInferencer
    inf = EACInferencer(
        CONFIGS['seg'], ckpts['seg'], device='cpu', whole_image=True)
    img = (np.random.RandomState(1).rand(500, 300, 3) * 255).astype(np.uint8)
    seen, pred = _backbone_input_shapes(inf, img)
    assert seen == [(512, 304)]  # padded to whole 16 px patches, once
    assert pred.pred_sem_seg.shape == (500, 300)
    # the config's pipeline resizes into its test scale (256, 64) instead
    seen, pred = _backbone_input_shapes(seg_inferencer, img)
    assert seen == [(112, 64)]  # 500x300 -> 107x64, padded to 16
    assert pred.pred_sem_seg.shape == (500, 300)
    with pytest.raises(ValueError, match='segmentors only'):
        EACInferencer(CONFIGS['cls'], whole_image=True)


def test_apis_module_does_not_import_upstream_libraries():
    """``mmeac/apis/inference.py`` imports mmseg / mmdet / mmpretrain only
    when an inferencer is built."""
    code = ('import importlib.abc, importlib.util, sys\n'
            'class Block(importlib.abc.MetaPathFinder):\n'
            '    def find_spec(self, name, path, target=None):\n'
            "        if name.split('.')[0] in ('mmseg', 'mmdet', "
            "'mmpretrain'):\n"
            "            raise ImportError('blocked ' + name)\n"
            'sys.meta_path.insert(0, Block())\n'
            "spec = importlib.util.spec_from_file_location('inf', "
            f"{osp.join(REPO, 'mmeac', 'apis', 'inference.py')!r})\n"
            'mod = importlib.util.module_from_spec(spec)\n'
            'spec.loader.exec_module(mod)\n'
            "print(mod.TASKS['mmseg'])\n")
    res = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         env=tool_env())
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == 'seg'
