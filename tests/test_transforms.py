"""``mmeac.datasets.transforms``: registered at ``import mmeac``."""
import numpy as np
import pytest

import mmeac  # noqa: F401
from mmeac.datasets import RandomPatchMask

FILL = [103.53, 116.28, 123.675]


def _img(h=40, w=52):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _blanked_cells(out, src, p):
    """Boolean grid of the patches that differ from the source image."""
    gh, gw = src.shape[0] // p, src.shape[1] // p
    diff = out[:gh * p, :gw * p] != src[:gh * p, :gw * p].astype(np.float32)
    return diff.reshape(gh, p, gw, p, -1).any(axis=(1, 3, 4))


def test_built_from_an_mmseg_pipeline_config():
    from mmseg.registry import TRANSFORMS
    t = TRANSFORMS.build(
        dict(type='RandomPatchMask', patch_size=8, ratio=0.5, fill=FILL))
    assert isinstance(t, RandomPatchMask)
    assert 'patch_size=8' in repr(t)


def test_fixed_mask_per_image_path():
    t = RandomPatchMask(patch_size=4, ratio=0.5, fill=FILL, fixed=True)
    src, seg = _img(), np.arange(40 * 52).reshape(40, 52)
    a = t(dict(img=src.copy(), img_path='x/a.jpg', gt_seg_map=seg.copy()))
    b = t(dict(img=src.copy(), img_path='x/a.jpg'))
    c = t(dict(img=src.copy(), img_path='x/b.jpg'))
    assert a['img'].dtype == np.float32
    np.testing.assert_array_equal(a['img'], b['img'])
    np.testing.assert_array_equal(a['gt_seg_map'], seg)  # labels kept
    cells_a = _blanked_cells(a['img'], src, 4)
    cells_c = _blanked_cells(c['img'], src, 4)
    assert cells_a.shape == (10, 13)
    assert not np.array_equal(cells_a, cells_c)
    assert 0.3 < cells_a.mean() < 0.7
    # a blanked patch holds exactly the fill, the others the source pixels
    blank = np.kron(cells_a, np.ones((4, 4), bool))
    np.testing.assert_array_equal(a['img'][blank],
                                  np.tile(np.float32(FILL), (blank.sum(), 1)))
    np.testing.assert_array_equal(a['img'][~blank], src[~blank])


def test_ratio_bounds_and_partial_patches():
    src = _img(42, 50)  # 2 and 2 pixels beyond the 8 px grid
    out = RandomPatchMask(8, 1.0, FILL)(dict(img=src.copy()))['img']
    assert (out[:40, :48] == np.float32(FILL)).all()
    np.testing.assert_array_equal(out[40:], src[40:])  # not a whole patch
    np.testing.assert_array_equal(out[:, 48:], src[:, 48:])
    out = RandomPatchMask(8, 0.0, FILL)(dict(img=src.copy()))['img']
    np.testing.assert_array_equal(out, src)


def test_random_mask_follows_numpy_seed_and_gray_images():
    t = RandomPatchMask(patch_size=4, ratio=0.5, fill=[127.5])
    gray = _img()[..., 0]
    np.random.seed(3)
    a = t(dict(img=gray.copy()))['img']
    np.random.seed(3)
    b = t(dict(img=gray.copy()))['img']
    c = t(dict(img=gray.copy()))['img']
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == gray.shape and set(np.unique(a[a != gray])) == {127.5}


@pytest.mark.parametrize('kwargs,match', [
    (dict(patch_size=0, ratio=0.5), 'patch_size'),
    (dict(patch_size=8, ratio=1.5), 'ratio'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomPatchMask(fill=FILL, **kwargs)
