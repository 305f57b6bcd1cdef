"""mmcv 2.1.0 is installed with its compiled ops, which give the right numbers.

Expected values are worked out by hand in the comments.
"""
import importlib.util

import mmcv
import pytest
import torch

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])

# Boxes 0 and 1 overlap: intersection 9 * 9 = 81, union 100 + 100 - 81 = 119,
# IoU = 0.68. Box 2 overlaps neither.
BOXES = [[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]]
SCORES = [0.9, 0.8, 0.7]


def test_mmcv_version_and_compiled_extension():
    assert mmcv.__version__ == '2.1.0'
    assert importlib.util.find_spec('mmcv._ext') is not None
    import mmcv._ext as ext
    assert hasattr(ext, 'nms') and hasattr(ext, 'roi_align_forward')
    from mmcv.ops import get_compiler_version, get_compiling_cuda_version
    assert get_compiler_version()  # e.g. 'GCC 12.2'
    if torch.cuda.is_available():
        assert get_compiling_cuda_version() not in ('', 'not available')


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('iou_thr,expected', [(0.5, [0, 2]), (0.7, [0, 1, 2])])
def test_nms(device, iou_thr, expected):
    from mmcv.ops import nms
    boxes = torch.tensor(BOXES, device=device)
    scores = torch.tensor(SCORES, device=device)
    dets, keep = nms(boxes, scores, iou_threshold=iou_thr)
    assert keep.tolist() == expected
    assert dets.shape == (len(expected), 5)
    torch.testing.assert_close(dets[:, 4].cpu(),
                               torch.tensor(SCORES)[expected])
    torch.testing.assert_close(dets[:, :4].cpu(),
                               torch.tensor(BOXES)[expected])


@pytest.mark.parametrize('device', DEVICES)
def test_batched_nms_keeps_other_classes(device):
    from mmcv.ops import batched_nms
    boxes = torch.tensor(BOXES, device=device)
    scores = torch.tensor(SCORES, device=device)
    # boxes 0 and 1 now belong to different classes: nothing is suppressed
    _, keep = batched_nms(boxes, scores, torch.tensor([0, 1, 0],
                                                      device=device),
                          dict(type='nms', iou_threshold=0.5))
    assert sorted(keep.tolist()) == [0, 1, 2]
    # same class: box 1 is suppressed
    _, keep = batched_nms(boxes, scores, torch.tensor([0, 0, 1],
                                                      device=device),
                          dict(type='nms', iou_threshold=0.5))
    assert sorted(keep.tolist()) == [0, 2]


@pytest.mark.parametrize('device', DEVICES)
def test_roi_align(device):
    from mmcv.ops import roi_align

    # feat[y, x] = 4 * y + x is linear, so bilinear sampling is exact.
    feat = torch.arange(16., device=device).view(1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 4., 4.]], device=device)
    # aligned=True shifts the RoI by -0.5 px: it spans [-0.5, 3.5]^2.
    # 1x1 output, 2x2 samples at -0.5 + (i + 0.5) * 2 = 0.5 and 2.5:
    # mean of 4y + x over y, x in {0.5, 2.5} = 4 * 1.5 + 1.5 = 7.5
    out = roi_align(feat, rois, (1, 1), 1.0, 2, 'avg', True)
    torch.testing.assert_close(out.cpu(), torch.tensor([[[[7.5]]]]))
    # 2x2 output, one sample per bin at its centre (0.5 or 2.5 on each axis)
    out = roi_align(feat, rois, (2, 2), 1.0, 1, 'avg', True)
    torch.testing.assert_close(out.cpu(),
                               torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    # spatial_scale 0.5: the RoI (0, 0, 8, 8) on the input is (0, 0, 4, 4) here
    rois = torch.tensor([[0., 0., 0., 8., 8.]], device=device)
    out = roi_align(feat, rois, (1, 1), 0.5, 2, 'avg', True)
    torch.testing.assert_close(out.cpu(), torch.tensor([[[[7.5]]]]))
