"""Object classes and scene drawing of the built-in synthetic datasets.

The class of an object follows from its shape *and* its colour; the table of
the classes with their real COCO, ADE20K and ImageNet ids is in the docstring
of :mod:`mmeac.testing.synthetic` (and in :data:`SHAPE_CLASSES`).

Polygon shapes are rasterised with pycocotools' own polygon rasteriser (so a
COCO polygon decodes to exactly the drawn pixels); circles, rings and ellipses
are sampled analytically at pixel centres. Later objects occlude earlier ones;
a scene is re-drawn until every object keeps at least 60 % of its pixels and a
visible box of at least 4x4 pixels.
"""
import warnings
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image

__all__ = [
    'ShapeClass', 'SHAPE_CLASSES', 'ADE_BACKGROUND_ID', 'ADE_CLASS_IDS',
    'COCO_CLASSES', 'COCO_CATEGORIES', 'IMAGENET_CLASSES', 'IMAGENET_LABELS',
    'SceneObject', 'sample_object', 'sample_clutter', 'sample_scene',
    'visible_masks', 'render'
]


@dataclass(frozen=True)
class ShapeClass:
    """One object class of the built-in data.

    Attributes:
        name (str): Canonical name, equal to the COCO category name.
        shape (str): One of ``circle``, ``square``, ``triangle``, ``ring``,
            ``cross``, ``ellipse``.
        color (tuple): Base RGB colour.
        coco_id (int): Real COCO-2017 category id of ``name``.
        ade_id (int): Real ADE20K (SceneParse150) class id, 1-based.
        ade_name (str): ADE20K class name of ``ade_id``.
        imagenet_wnid (str): WordNet id of the matching ImageNet-1k class
            (the class folder name).
        imagenet_index (int): Index of that class in ImageNet-1k (0-999).
        imagenet_name (str): Its (first) ImageNet-1k name.
    """
    name: str
    shape: str
    color: Tuple[int, int, int]
    coco_id: int
    ade_id: int
    ade_name: str
    imagenet_wnid: str
    imagenet_index: int
    imagenet_name: str


#: The object classes, in COCO id order.
SHAPE_CLASSES: Tuple[ShapeClass, ...] = (
    ShapeClass('airplane', 'cross', (205, 45, 205), 5, 91, 'airplane',
               'n02690373', 404, 'airliner'),
    ShapeClass('boat', 'triangle', (40, 70, 215), 9, 77, 'boat', 'n04147183',
               780, 'schooner'),
    ShapeClass('sports ball', 'circle', (220, 35, 35), 37, 120, 'ball',
               'n04254680', 805, 'soccer ball'),
    ShapeClass('book', 'square', (35, 170, 55), 84, 68, 'book', 'n07248320',
               921, 'book jacket'),
    ShapeClass('clock', 'ring', (240, 205, 35), 85, 149, 'clock', 'n04548280',
               892, 'wall clock'),
    ShapeClass('vase', 'ellipse', (35, 205, 215), 86, 136, 'vase', 'n04522168',
               883, 'vase'),
)
#: ADE id of the textured background ("floor").
ADE_BACKGROUND_ID = 4
#: ADE ids of the object classes, in :data:`SHAPE_CLASSES` order.
ADE_CLASS_IDS: Tuple[int, ...] = tuple(c.ade_id for c in SHAPE_CLASSES)
#: COCO names of the object classes in COCO id order (for
#: ``metainfo=dict(classes=COCO_CLASSES)``).
COCO_CLASSES: Tuple[str, ...] = tuple(c.name for c in SHAPE_CLASSES)
#: ImageNet-layout class folders (wnids), sorted: the label a folder scan
#: gives a folder is its index here.
IMAGENET_CLASSES: Tuple[str, ...] = tuple(
    sorted(c.imagenet_wnid for c in SHAPE_CLASSES))
#: ImageNet-1k index of each folder of :data:`IMAGENET_CLASSES` (the labels
#: written to ``meta/{train,val}.txt``).
IMAGENET_LABELS: Tuple[int, ...] = tuple(
    next(c.imagenet_index for c in SHAPE_CLASSES if c.imagenet_wnid == wnid)
    for wnid in IMAGENET_CLASSES)

#: The 80 COCO-2017 categories: ``(id, name, supercategory)``.
COCO_CATEGORIES: Tuple[Tuple[int, str, str], ...] = tuple(
    (cid, name, sup) for sup, items in (
        ('person', ((1, 'person'), )),
        ('vehicle',
         ((2, 'bicycle'), (3, 'car'), (4, 'motorcycle'), (5, 'airplane'),
          (6, 'bus'), (7, 'train'), (8, 'truck'), (9, 'boat'))),
        ('outdoor', ((10, 'traffic light'), (11, 'fire hydrant'),
                     (13, 'stop sign'), (14, 'parking meter'), (15, 'bench'))),
        ('animal', ((16, 'bird'), (17, 'cat'), (18, 'dog'), (19, 'horse'),
                    (20, 'sheep'), (21, 'cow'), (22, 'elephant'), (23, 'bear'),
                    (24, 'zebra'), (25, 'giraffe'))),
        ('accessory', ((27, 'backpack'), (28, 'umbrella'), (31, 'handbag'),
                       (32, 'tie'), (33, 'suitcase'))),
        ('sports', ((34, 'frisbee'), (35, 'skis'), (36, 'snowboard'),
                    (37, 'sports ball'), (38, 'kite'), (39, 'baseball bat'),
                    (40, 'baseball glove'), (41, 'skateboard'),
                    (42, 'surfboard'), (43, 'tennis racket'))),
        ('kitchen', ((44, 'bottle'), (46, 'wine glass'), (47, 'cup'),
                     (48, 'fork'), (49, 'knife'), (50, 'spoon'), (51,
                                                                  'bowl'))),
        ('food', ((52, 'banana'), (53, 'apple'), (54, 'sandwich'),
                  (55, 'orange'), (56, 'broccoli'), (57, 'carrot'),
                  (58, 'hot dog'), (59, 'pizza'), (60, 'donut'), (61,
                                                                  'cake'))),
        ('furniture', ((62, 'chair'), (63, 'couch'), (64, 'potted plant'),
                       (65, 'bed'), (67, 'dining table'), (70, 'toilet'))),
        ('electronic', ((72, 'tv'), (73, 'laptop'), (74, 'mouse'),
                        (75, 'remote'), (76, 'keyboard'), (77, 'cell phone'))),
        ('appliance', ((78, 'microwave'), (79, 'oven'), (80, 'toaster'),
                       (81, 'sink'), (82, 'refrigerator'))),
        ('indoor',
         ((84, 'book'), (85, 'clock'), (86, 'vase'), (87, 'scissors'),
          (88, 'teddy bear'), (89, 'hair drier'), (90, 'toothbrush'))),
    ) for cid, name in items)

_POLYGON_SHAPES = ('square', 'triangle', 'cross')
_MIN_VISIBLE_FRACTION = 0.6
_MIN_BOX_SIDE = 4


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A low-saturation, smoothly varying "floor" texture (float32 HxWx3)."""
    base = np.array([128., 116., 104.]) + rng.uniform(-20, 20, size=3)
    gh, gw = max(2, h // 32), max(2, w // 32)
    coarse = rng.normal(0, 1, size=(gh, gw)).astype(np.float32)
    coarse = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR))
    tile = max(8, min(h, w) // 16)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = ((yy // tile + xx // tile) % 2).astype(np.float32) * 2 - 1
    lum = 14.0 * coarse + 6.0 * stripes
    img = base[None, None, :] + lum[..., None]
    img += rng.normal(0, 6, size=(h, w, 3))
    return img.astype(np.float32)


def _polygon_vertices(shape: str, cx: float, cy: float, r: float,
                      theta: float) -> np.ndarray:
    """Vertices (Nx2, x/y) of a polygon shape with circumradius ``r``."""
    if shape == 'square':
        ang = theta + np.pi / 4 + np.arange(4) * np.pi / 2
        pts = np.stack([np.cos(ang), np.sin(ang)], axis=1) * r
    elif shape == 'triangle':
        ang = theta - np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        pts = np.stack([np.cos(ang), np.sin(ang)], axis=1) * r
    elif shape == 'cross':
        a, b = 0.32, 1.0  # arm half-width and arm length, in units of r
        base = np.array([[a, b], [-a, b], [-a, a], [-b, a], [-b, -a], [-a, -a],
                         [-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a]])
        base = base / np.hypot(a, b)  # circumradius 1
        c, s = np.cos(theta), np.sin(theta)
        pts = base @ np.array([[c, s], [-s, c]]) * r
    else:
        raise ValueError(f'{shape!r} is not a polygon shape')
    return pts + np.array([cx, cy])


def _polygon_mask(poly: np.ndarray, h: int, w: int) -> np.ndarray:
    from pycocotools import mask as mask_utils
    rles = mask_utils.frPyObjects([poly.reshape(-1).tolist()], h, w)
    with warnings.catch_warnings():
        # pycocotools' Cython decode still calls np.array(copy=False) on
        # its RLE buffer, which numpy 2 deprecates; the result is unchanged
        warnings.filterwarnings(
            'ignore',
            message='__array__ implementation doesn',
            category=DeprecationWarning)
        mask = mask_utils.decode(mask_utils.merge(rles))
    return mask.astype(bool)


def _analytic_mask(shape: str, cx: float, cy: float, r: float, theta: float,
                   h: int, w: int) -> np.ndarray:
    """Mask of a circle / ring / ellipse, sampled at pixel centres."""
    mask = np.zeros((h, w), dtype=bool)
    x0, x1 = max(0,
                 int(np.floor(cx - r)) - 1), min(w,
                                                 int(np.ceil(cx + r)) + 2)
    y0, y1 = max(0,
                 int(np.floor(cy - r)) - 1), min(h,
                                                 int(np.ceil(cy + r)) + 2)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dx, dy = xx + 0.5 - cx, yy + 0.5 - cy
    if shape == 'circle':
        inside = dx * dx + dy * dy <= r * r
    elif shape == 'ring':
        d2 = dx * dx + dy * dy
        inside = (d2 <= r * r) & (d2 >= (0.55 * r)**2)
    elif shape == 'ellipse':
        c, s = np.cos(theta), np.sin(theta)
        u, v = c * dx + s * dy, -s * dx + c * dy
        inside = (u / r)**2 + (v / (0.55 * r))**2 <= 1.0
    else:
        raise ValueError(f'unknown shape {shape!r}')
    mask[y0:y1, x0:x1] = inside
    return mask


@dataclass
class SceneObject:
    cls_index: int  # index into SHAPE_CLASSES, or -1 for clutter
    mask: np.ndarray
    polygon: Optional[np.ndarray]  # set for polygon shapes
    color: np.ndarray


def sample_object(rng: np.random.Generator,
                  cls_index: int,
                  h: int,
                  w: int,
                  r_range: Tuple[float, float],
                  center: Optional[Tuple[float, float]] = None) -> SceneObject:
    cls = SHAPE_CLASSES[cls_index]
    side = min(h, w)
    r = float(rng.uniform(*r_range)) * side
    r = min(r, (side - 4) / 2.0)
    if center is None:
        cx = float(rng.uniform(r + 1, w - r - 1))
        cy = float(rng.uniform(r + 1, h - r - 1))
    else:
        cx = float(np.clip(center[0], r + 1, w - r - 1))
        cy = float(np.clip(center[1], r + 1, h - r - 1))
    theta = float(rng.uniform(0, 2 * np.pi))
    color = np.array(
        cls.color, dtype=np.float32) + rng.uniform(
            -15, 15, size=3).astype(np.float32)
    if cls.shape in _POLYGON_SHAPES:
        # rounded before drawing: the stored polygon decodes to these pixels
        poly = np.round(_polygon_vertices(cls.shape, cx, cy, r, theta), 2)
        return SceneObject(cls_index, _polygon_mask(poly, h, w), poly, color)
    return SceneObject(cls_index,
                       _analytic_mask(cls.shape, cx, cy, r, theta, h, w), None,
                       color)


def sample_clutter(rng: np.random.Generator, h: int, w: int) -> SceneObject:
    """A small irregular grey blob (ADE "other", not a COCO object)."""
    side = min(h, w)
    r = float(rng.uniform(0.04, 0.09)) * side
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    n = int(rng.integers(5, 9))
    ang = np.sort(rng.uniform(0, 2 * np.pi, size=n))
    rad = r * rng.uniform(0.5, 1.0, size=n)
    poly = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
    grey = float(rng.uniform(70, 190))
    color = np.full(3, grey, dtype=np.float32)
    return SceneObject(-1, _polygon_mask(poly, h, w), None, color)


def visible_masks(objs: List[SceneObject]) -> List[np.ndarray]:
    """Visible part of each object; later objects are drawn on top."""
    vis = []
    cover = np.zeros_like(objs[0].mask) if objs else None
    for obj in reversed(objs):
        vis.append(obj.mask & ~cover)
        cover = cover | obj.mask
    return vis[::-1]


def _layout_ok(objs: List[SceneObject], vis: List[np.ndarray]) -> bool:
    for obj, v in zip(objs, vis):
        if obj.cls_index < 0:
            continue
        full, seen = int(obj.mask.sum()), int(v.sum())
        if full == 0 or seen < _MIN_VISIBLE_FRACTION * full:
            return False
        ys, xs = np.nonzero(v)
        if (xs.max() - xs.min() + 1 < _MIN_BOX_SIDE
                or ys.max() - ys.min() + 1 < _MIN_BOX_SIDE):
            return False
    return True


def render(rng: np.random.Generator, h: int, w: int,
           objs: List[SceneObject]) -> np.ndarray:
    img = _background(rng, h, w)
    for obj in objs:
        img[obj.mask] = obj.color
    # object texture: mild noise everywhere keeps colours close to the class
    img += rng.normal(0, 5, size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def sample_scene(
    rng: np.random.Generator, h: int, w: int, num_objects: int,
    num_clutter: int
) -> Tuple[np.ndarray, List[SceneObject], List[np.ndarray]]:
    """Sample a multi-object scene whose objects stay mostly visible."""
    objs: List[SceneObject] = []
    vis: List[np.ndarray] = []
    for _ in range(20):
        clutter = [sample_clutter(rng, h, w) for _ in range(num_clutter)]
        things = [
            sample_object(rng, int(rng.integers(len(SHAPE_CLASSES))), h, w,
                          (0.07, 0.2)) for _ in range(num_objects)
        ]
        objs = clutter + things
        vis = visible_masks(objs)
        if _layout_ok(objs, vis):
            break
        num_objects = max(1, num_objects - 1) if num_objects else 0
    else:  # pragma: no cover - 20 failed layouts in a row is very unlikely
        keep = [i for i, o in enumerate(objs) if o.cls_index < 0]
        objs = [objs[i] for i in keep]
        vis = visible_masks(objs)
    return render(rng, h, w, objs), objs, vis
