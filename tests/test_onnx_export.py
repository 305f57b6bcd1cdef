"""ONNX export: parity of ONNX Runtime with PyTorch, standard ops only.

The tiny demo configs (random weights saved as checkpoints) export through
``mmeac.apis.onnx_export`` and ``tools/deployment/pytorch2onnx.py``:
segmentor logits at two budgets with dynamic height / width, each compared
with PyTorch at two sizes (fp32, max abs error <= 1e-4; UperNet at the
config's 16 cores, the same backbone under a 1x1-conv head at 8); a
classifier's logits; a detector's backbone + neck. The core-periphery op
becomes plain ONNX ops (default domain only). Bad input fails with one line
and writes nothing.

The tool runs in-process through its ``main(argv)`` (``call_tool``), except
the classifier export: a real subprocess (CLI smoke).
"""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from _tool_helpers import REPO, call_tool, run, run_error_line, warm_python

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

TOOL = osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py')
SEG = osp.join(REPO, 'configs', 'demo',
               'upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')
DET = osp.join(REPO, 'configs', 'demo',
               'mask-rcnn_eac-tiny_sfp_1xb2-lsj-4it_builtin-coco-128.py')
CLS = osp.join(REPO, 'configs', 'demo',
               'linear-probe_eac-tiny_1xb4-4it_builtin-in1k-64px.py')

#: The demo segmentor's backbone under a 1x1-conv head, no neck: the core
#: budget lives in the backbone, and this model exports in a fraction of
#: the time of UperNet (whose neck and head resizes dominate the export).
LIGHT_HEAD = {
    'model.neck': None,
    'model.decode_head': {
        '_delete_': True,
        'type': 'FCNHead',
        'in_channels': 32,
        'channels': 32,
        'num_convs': 0,
        'concat_input': False,
        'num_classes': 150
    }
}


def _save_random(config, path, cfg_options=None):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import mmeac  # noqa: F401
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


@pytest.fixture(scope='module')
def seg_ckpt(tmp_path_factory):
    return _save_random(SEG, str(tmp_path_factory.mktemp('onnx') / 'seg.pth'))


def _max_err(ref, outs):
    assert len(ref) == len(outs)
    err = 0.0
    for r, o in zip(ref, outs):
        assert tuple(r.shape) == o.shape
        err = max(err, float(np.abs(r.numpy() - o).max()))
    return err


@pytest.mark.parametrize('num_cores,head', [(16, 'upernet'), (8, 'light')])
def test_segmentor_logits_parity_dynamic(num_cores, head, seg_ckpt, tmp_path,
                                         tmp_path_factory):
    from mmeac.apis.onnx_export import (build_export_model, export_onnx,
                                        onnx_session, run_onnx)
    options, stride = (None, 4) if head == 'upernet' else (LIGHT_HEAD, 8)
    ckpt = seg_ckpt if head == 'upernet' else _save_random(
        SEG, str(tmp_path_factory.mktemp('light') / 'light.pth'), options)
    wrapper, info = build_export_model(
        SEG, ckpt, num_cores=num_cores, cfg_options=options)
    assert info == dict(
        task='seg',
        part='model',
        num_cores=num_cores,
        patch_size=8,
        in_channels=3)
    path = str(tmp_path / 'seg.onnx')
    # H, W >= 32: what UperNet's pooling takes; a smaller bound makes
    # torch.export trace again with the bound it suggests (twice the time)
    export_onnx(wrapper, path, (64, 96), dynamic=True, min_size=32)
    assert os.listdir(tmp_path) == ['seg.onnx']  # no temporary left
    model = onnx.load(path)
    # the op became standard ONNX ops: default domain only, no mmeac op
    assert {n.domain for n in model.graph.node} <= {'', 'ai.onnx'}
    assert not [n for n in model.graph.node if 'mmeac' in n.op_type]
    # two softmaxes per block: core queries and patch queries
    assert sum(n.op_type == 'Softmax' for n in model.graph.node) == 2 * 4
    session = onnx_session(path)
    gen = torch.Generator().manual_seed(num_cores)
    for size in [(64, 96), (120, 72)]:  # the traced size and another
        x = torch.randn(1, 3, *size, generator=gen)
        with torch.no_grad():
            ref = wrapper(x)
        assert ref[0].shape == (1, 150, size[0] // stride, size[1] // stride)
        assert _max_err(ref, run_onnx(session, x)) <= 1e-4
    # the budget is the one frozen into the graph
    other = 16 if num_cores == 8 else 8
    wrapper.model.backbone.num_cores = other
    with torch.no_grad():
        ref = wrapper(x)
    assert _max_err(ref, run_onnx(session, x)) > 1e-3


def test_backbone_alone_dynamic_batch(seg_ckpt, tmp_path):
    from mmeac.apis.onnx_export import (build_export_model, export_onnx,
                                        onnx_session, run_onnx)
    wrapper, info = build_export_model(
        SEG, seg_ckpt, part='backbone', num_cores=16)
    assert info['part'] == 'backbone'
    path = str(tmp_path / 'backbone.onnx')
    names = export_onnx(wrapper, path, (64, 64), dynamic=True, min_size=8)
    assert names == ['output0', 'output1', 'output2', 'output3']
    session = onnx_session(path)
    x = torch.randn(2, 3, 48, 80)
    with torch.no_grad():
        ref = wrapper(x)
    assert ref[0].shape == (2, 32, 6, 10)
    assert _max_err(ref, run_onnx(session, x)) <= 1e-4


def test_tool_classifier_and_detector(tmp_path):
    """The classifier through the command line (a subprocess), the
    detector in-process."""
    cls_ckpt = _save_random(CLS, str(tmp_path / 'cls.pth'))
    out = tmp_path / 'out' / 'cls.onnx'
    res = run([
        warm_python(), TOOL, CLS, cls_ckpt, '--out',
        str(out), '--shape', '64', '64', '--num-cores', '8', '--verify',
        '--benchmark', '2'
    ],
              cwd=str(tmp_path),
              timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'exporting cls model at 8 cores, 64x64' in res.stdout
    assert 'verify 64x64: max abs error' in res.stdout and '(ok' in \
        res.stdout
    assert 'ONNX Runtime' in res.stdout and 'ms' in res.stdout
    session = ort.InferenceSession(str(out))
    logits = session.run(None, {'input': np.zeros((1, 3, 64, 64), np.float32)})
    assert logits[0].shape == (1, 1000)

    det_ckpt = _save_random(DET, str(tmp_path / 'det.pth'))
    argv = [
        DET, det_ckpt, '--out',
        str(tmp_path / 'det.onnx'), '--shape', '128', '128', '--verify'
    ]
    res = call_tool(TOOL, *argv, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'exporting det neck' in res.stdout
    session = ort.InferenceSession(str(tmp_path / 'det.onnx'))
    feats = session.run(None,
                        {'input': np.zeros((1, 3, 128, 128), np.float32)})
    # the simple feature pyramid: strides 8, 16, 32, 64 (+ pooled level)
    assert [f.shape[-1] for f in feats][:4] == [32, 16, 8, 4]


@pytest.mark.parametrize('case', ['small shape', 'budget', 'missing ckpt'])
def test_tool_bad_input_one_line_nothing_written(case, seg_ckpt, tmp_path):
    args = {
        'small shape': [seg_ckpt, '--shape', '4', '64'],
        'budget': [seg_ckpt, '--num-cores', '12'],
        'missing ckpt': [str(tmp_path / 'none.pth')],
    }[case]
    msg = {
        'small shape': '--shape 4 64 is smaller than one 8x8 patch',
        'budget': 'num_cores=12 is not a core budget of this model',
        'missing ckpt': f'checkpoint {tmp_path}/none.pth does not exist',
    }[case]
    argv = [SEG, *args, '--out', str(tmp_path / 'x' / 'model.onnx')]
    res = call_tool(TOOL, *argv, cwd=str(tmp_path))
    assert msg in run_error_line(res, 'pytorch2onnx.py')
    assert os.listdir(tmp_path) == []


def test_tool_refuses_an_existing_out_file(seg_ckpt, tmp_path):
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'the user\'s own model')
    res = call_tool(TOOL, SEG, seg_ckpt, '--out', str(out), cwd=str(tmp_path))
    assert res.returncode == 2
    assert f'--out {out} exists; pass --overwrite' in res.stderr
    assert 'Traceback' not in res.stderr
    assert out.read_bytes() == b'the user\'s own model'
    assert os.listdir(tmp_path) == ['model.onnx']
