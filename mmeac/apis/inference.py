"""Inference on images with mmeac models, through the upstream inferencers.

:class:`EACInferencer` builds the upstream inferencer that fits the config's
``default_scope`` (``mmseg`` -> ``MMSegInferencer``, ``mmdet`` ->
``DetInferencer``, ``mmpretrain`` -> ``ImageClassificationInferencer``),
lets it load the checkpoint, build the test pipeline and run the model, and
adds what mmeac needs on top: the core budget (``num_cores``) per call,
checks of the inputs before anything runs, an optional whole-image
(native resolution) mode for segmentors, one progress bar for a list or a
folder of images, and drawing with the upstream visualizers.

mmseg, mmdet and mmpretrain are imported lazily, when an inferencer is
built, so ``import mmeac.apis`` stays cheap.
"""
import contextlib
import copy
import os
import os.path as osp
import sys
from typing import Iterator, List, Optional, Sequence, Union

import numpy as np
from mmengine.config import Config

__all__ = [
    'EACInferencer', 'init_model', 'load_config', 'task_of', 'set_num_cores',
    'list_images', 'expand_inputs', 'check_image_file', 'IMAGE_EXTENSIONS',
    'TASKS'
]

#: ``default_scope`` -> task.
TASKS = {'mmseg': 'seg', 'mmdet': 'det', 'mmpretrain': 'cls'}
#: File name endings taken as images when a folder is given.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                    '.ppm', '.pgm')

ImageType = Union[str, np.ndarray]


def load_config(config: Union[str, Config],
                cfg_options: Optional[dict] = None) -> Config:
    """Load a config (path, ``pkg::path`` or :class:`Config`) after
    importing mmeac (its compatibility fixes resolve ``pkg::`` bases and
    register the mmeac modules), and merge ``cfg_options``.

    Raises:
        FileNotFoundError: If the config file does not exist.
    """
    import mmeac  # noqa: F401
    from mmeac.utils.toolkit import resolve_config_path
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        path = resolve_config_path(str(config), FileNotFoundError, quote='')
        cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def task_of(cfg: Config) -> str:
    """``'seg'``, ``'det'`` or ``'cls'`` from the config's default scope.

    Raises:
        ValueError: For a scope none of the three libraries owns.
    """
    scope = cfg.get('default_scope', None)
    if scope not in TASKS:
        raise ValueError(f'config default_scope {scope!r} is not one of '
                         f'{sorted(TASKS)}, so the task is unknown')
    return TASKS[scope]


def _backbone(model):
    backbone = getattr(model, 'backbone', model)
    if not hasattr(backbone, 'allowed_budgets'):
        raise ValueError(f'{type(backbone).__name__} is not an EAC backbone '
                         '(no core budgets)')
    return backbone


def set_num_cores(model, num_cores: int) -> int:
    """Set the eval core budget of ``model``'s EAC backbone.

    Returns:
        int: The previous budget.

    Raises:
        ValueError: If the model has no EAC backbone or no such budget (the
            message lists the budgets it has).
    """
    backbone = _backbone(model)
    old = backbone.num_cores
    backbone.num_cores = num_cores
    return old


def _is_image_name(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str) -> List[str]:
    """Image files (by name ending) directly inside ``folder``, sorted.

    Raises:
        ValueError: If there is none.
    """
    files = sorted(
        osp.join(folder, f) for f in os.listdir(folder)
        if _is_image_name(f) and osp.isfile(osp.join(folder, f)))
    if not files:
        raise ValueError(f'folder {folder} holds no image files '
                         f'({", ".join(IMAGE_EXTENSIONS)})')
    return files


def check_image_file(path: str) -> None:
    """Raise if ``path`` does not exist or cannot be decoded as an image."""
    import mmcv
    if not osp.exists(path):
        raise FileNotFoundError(f'image {path} does not exist')
    if not osp.isfile(path):
        raise ValueError(f'image {path} is not a file')
    try:
        img = mmcv.imread(path)
    except Exception:  # decoders raise many kinds
        img = None
    if img is None or img.size == 0:
        raise ValueError(f'image {path} is not an image (cannot decode it)')


def expand_inputs(inputs) -> List[ImageType]:
    """A path, folder, array or a list of them -> checked list of images."""
    if isinstance(inputs, (str, os.PathLike)):
        path = os.fspath(inputs)
        items = list_images(path) if osp.isdir(path) else [path]
    elif isinstance(inputs, np.ndarray):
        items = [inputs]
    elif isinstance(inputs, (list, tuple)):
        items = [
            os.fspath(i) if isinstance(i, os.PathLike) else i for i in inputs
        ]
    else:
        raise ValueError(f'inputs must be an image path, a folder, an array '
                         f'or a list of them, got {type(inputs).__name__}')
    if not items:
        raise ValueError('no input images')
    for item in items:
        if isinstance(item, str):
            check_image_file(item)
        elif isinstance(item, np.ndarray):
            if item.ndim not in (2, 3) or item.size == 0 or (
                    item.ndim == 3 and item.shape[2] not in (1, 3)):
                raise ValueError(f'image arrays must be HxW or HxWx3 (BGR), '
                                 f'got shape {item.shape}')
        else:
            raise ValueError(f'an input image must be a path or an array, '
                             f'got {type(item).__name__}')
    return items


def _drop_resize(pipeline: list) -> list:
    """The test pipeline without its resizing steps."""
    return [
        t for t in pipeline
        if str(t.get('type', '')).split('.')[-1] not in ('Resize',
                                                         'RandomResize',
                                                         'ResizeEdge',
                                                         'ResizeShortestEdge')
    ]


class EACInferencer:
    """Run an mmeac segmentor, detector or classifier on images.

    Wraps the upstream inferencer chosen by the config's ``default_scope``
    (available as :attr:`inferencer`); the checkpoint is loaded and the test
    pipeline built by it, as for any mmseg / mmdet / mmpretrain model.

    Args:
        config (str | Config): Config file, ``pkg::path`` or Config.
        checkpoint (str, optional): Checkpoint file. Defaults to None
            (random weights, for tests).
        device (str, optional): ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
            Defaults to CUDA when available, else CPU.
        num_cores (int, optional): Core budget. Defaults to the config's.
        cfg_options (dict, optional): Config overrides.
        whole_image (bool): Segmentors only: drop the resize of the test
            pipeline and force ``test_cfg.mode='whole'``, so the image is
            segmented at its own resolution in one pass. Defaults to False.
        show_progress (bool): A progress bar for more than one image.

    Example:
        >>> from mmeac.apis import EACInferencer
        >>> inferencer = EACInferencer(
        ...     'configs/eac/upernet_eac-b_8xb2-160k_ade20k-512x512.py',
        ...     'upernet_eac-b.pth', num_cores=32)
        >>> pred = inferencer('demo.jpg')[0]          # a SegDataSample
        >>> preds = inferencer('photos/', num_cores=8)  # a folder
        >>> drawn = inferencer.visualize('demo.jpg', pred)  # RGB array
    """

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: Optional[str] = None,
                 num_cores: Optional[int] = None,
                 cfg_options: Optional[dict] = None,
                 whole_image: bool = False,
                 show_progress: bool = True) -> None:
        import torch
        cfg = load_config(config, cfg_options)
        self.task = task_of(cfg)
        if checkpoint is not None and not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint {checkpoint} does not '
                                    'exist')
        if checkpoint is not None:
            # the upstream inferencers load non-strictly: a checkpoint of
            # another model would predict garbage with only a warning
            from mmeac.utils.toolkit import ToolError, check_checkpoint
            try:
                check_checkpoint(cfg, str(config), checkpoint)
            except ToolError as err:
                raise ValueError(str(err)) from None
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if str(device).startswith('cuda') and not torch.cuda.is_available():
            raise ValueError(f'device {device} requested but CUDA is not '
                             'available')
        if whole_image:
            if self.task != 'seg':
                raise ValueError('whole_image is for segmentors only')
            pipe = cfg.test_dataloader.dataset.pipeline
            cfg.test_dataloader.dataset.pipeline = _drop_resize(pipe)
            cfg.model.test_cfg = dict(mode='whole')
        self.cfg = cfg
        self.show_progress = show_progress
        self.inferencer = self._build(cfg, checkpoint, str(device))
        _backbone(self.model)  # an EAC model
        if num_cores is not None:
            self.num_cores = num_cores

    def _build(self, cfg: Config, checkpoint: Optional[str], device: str):
        from mmengine.registry import init_default_scope
        init_default_scope(cfg.default_scope)
        if self.task == 'seg':
            from mmseg.apis import MMSegInferencer
            inferencer = MMSegInferencer(cfg, checkpoint, device=device)
            inferencer.show_progress = False  # one bar, ours
            return inferencer
        if self.task == 'det':
            from mmdet.apis import DetInferencer
            return DetInferencer(
                cfg, checkpoint, device=device, show_progress=False)
        from mmpretrain.apis import ImageClassificationInferencer
        return ImageClassificationInferencer(
            cfg, pretrained=checkpoint or False, device=device)

    # ------------------------------------------------------------ budget
    @property
    def model(self):
        """The model (an mmseg / mmdet / mmpretrain model in eval mode)."""
        return self.inferencer.model

    @property
    def num_cores(self) -> int:
        """Core budget of the EAC backbone."""
        return _backbone(self.model).num_cores

    @num_cores.setter
    def num_cores(self, value: int) -> None:
        set_num_cores(self.model, value)

    @property
    def budgets(self) -> Sequence[int]:
        """The core budgets this model can run at."""
        return tuple(_backbone(self.model).allowed_budgets)

    @contextlib.contextmanager
    def budget(self, num_cores: Optional[int]) -> Iterator[None]:
        """Run at ``num_cores`` (None: unchanged) inside the block."""
        if num_cores is None:
            yield
            return
        old = set_num_cores(self.model, num_cores)
        try:
            yield
        finally:
            set_num_cores(self.model, old)

    # --------------------------------------------------------- inference
    def _infer_one(self, image: ImageType):
        if self.task == 'cls':
            # the inferencer's own steps (its __call__ always shows a bar)
            data = next(iter(self.inferencer.preprocess([image])))
            return self.inferencer.forward(data)[0]
        else:
            out = self.inferencer(
                image, return_datasamples=True, return_vis=False)
            if isinstance(out, dict):
                out = out['predictions']
        return out[0] if isinstance(out, (list, tuple)) else out

    def iter_predict(self,
                     inputs,
                     num_cores: Optional[int] = None,
                     show_progress: Optional[bool] = None):
        """Yield ``(image, prediction)`` one image at a time (so a folder
        is not held in memory); see :meth:`__call__` for the arguments.

        Every input is checked, and the budget validated, before the first
        image runs.
        """
        images = expand_inputs(inputs)
        show = self.show_progress if show_progress is None else show_progress
        bar = None
        if show and len(images) > 1:
            from tqdm import tqdm
            bar = tqdm(
                total=len(images),
                desc=f'mmeac {self.task} inference',
                unit='img',
                file=sys.stderr,
                dynamic_ncols=True)
        try:
            with self.budget(num_cores):
                for image in images:
                    yield image, self._infer_one(image)
                    if bar is not None:
                        bar.update()
        finally:
            if bar is not None:
                bar.close()

    def __call__(self,
                 inputs,
                 num_cores: Optional[int] = None,
                 show_progress: Optional[bool] = None) -> list:
        """Predict.

        Args:
            inputs (str | ndarray | list): An image path, a folder (its
                image files, sorted by name), a BGR ``uint8`` array (as
                ``mmcv.imread`` returns), or a list of paths / arrays.
            num_cores (int, optional): Core budget for this call.
            show_progress (bool, optional): Override the progress bar.

        Returns:
            list: One data sample per image (``SegDataSample`` with
            ``pred_sem_seg`` / ``DetDataSample`` with ``pred_instances`` /
            mmpretrain ``DataSample`` with ``pred_label`` and
            ``pred_score``).

        Raises:
            FileNotFoundError: An image path that does not exist.
            ValueError: A file that is not an image, or a budget the model
                does not have.
        """
        return [
            pred
            for _, pred in self.iter_predict(inputs, num_cores, show_progress)
        ]

    # ------------------------------------------------------- visualizing
    def visualize(self,
                  image: ImageType,
                  prediction,
                  score_thr: float = 0.3,
                  opacity: float = 0.5) -> np.ndarray:
        """Draw ``prediction`` over ``image`` with the upstream visualizer
        (``SegLocalVisualizer``, ``DetLocalVisualizer`` or mmpretrain's
        ``UniversalVisualizer``).

        Args:
            image (str | ndarray): The image (path or BGR array).
            prediction: Its data sample from :meth:`__call__`.
            score_thr (float): Detections below it are not drawn.
            opacity (float): Opacity of segmentation masks.

        Returns:
            ndarray: The drawing, RGB ``uint8``.
        """
        import mmcv
        img = mmcv.imread(image) if isinstance(image, str) else image
        img = mmcv.bgr2rgb(mmcv.gray2bgr(img) if img.ndim == 2 else img)
        name = osp.basename(image) if isinstance(image, str) else 'image'
        if self.task == 'cls':
            from mmpretrain.visualization import UniversalVisualizer
            if getattr(self, '_cls_visualizer', None) is None:
                self._cls_visualizer = UniversalVisualizer(
                    name=f'mmeac-cls-{id(self)}')
            return self._cls_visualizer.visualize_cls(
                img,
                prediction,
                classes=self.inferencer.classes,
                draw_gt=False,
                draw_pred=True,
                draw_score=True)
        vis = self.inferencer.visualizer
        if self.task == 'seg':
            vis.alpha = opacity
            vis.add_datasample(
                name, img, prediction, draw_gt=False, draw_pred=True)
        else:
            vis.add_datasample(
                name, img, prediction, draw_gt=False, pred_score_thr=score_thr)
        return vis.get_image()

    def summarize(self, prediction, score_thr: float = 0.3) -> str:
        """One line describing a prediction (for the demo's output)."""
        meta = getattr(self.model, 'dataset_meta', None) or {}
        classes = (self.inferencer.classes
                   if self.task == 'cls' else meta.get('classes')) or None

        def name(idx: int) -> str:
            if classes is not None and 0 <= idx < len(classes):
                return str(classes[idx])
            return str(idx)

        if self.task == 'cls':
            label = int(prediction.pred_label[0])
            score = float(prediction.pred_score[label])
            return f'class {name(label)} (index {label}), score {score:.3f}'
        if self.task == 'seg':
            seg = prediction.pred_sem_seg.data.flatten()
            ids, counts = np.unique(seg.cpu().numpy(), return_counts=True)
            order = np.argsort(-counts)[:5]
            parts = [
                f'{name(int(ids[i]))} {100 * counts[i] / seg.numel():.1f}%'
                for i in order
            ]
            h, w = prediction.pred_sem_seg.shape
            return (f'{h}x{w} label map, {len(ids)} classes; largest: ' +
                    ', '.join(parts))
        inst = prediction.pred_instances
        keep = inst.scores >= score_thr
        labels = [name(int(x)) for x in inst.labels[keep]]
        top = ', '.join(f'{n} {float(s):.2f}'
                        for n, s in zip(labels[:5], inst.scores[keep][:5]))
        return (f'{int(keep.sum())} of {len(inst)} detections with score >= '
                f'{score_thr}' + (f': {top}' if top else ''))


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: Optional[str] = None,
               num_cores: Optional[int] = None,
               cfg_options: Optional[dict] = None):
    """Build a model from a config and a checkpoint, in eval mode.

    The model is built and loaded by the upstream inferencer (see
    :class:`EACInferencer`), so it carries ``dataset_meta`` and ``cfg``.
    """
    return EACInferencer(
        config,
        checkpoint,
        device=device,
        num_cores=num_cores,
        cfg_options=cfg_options).model
