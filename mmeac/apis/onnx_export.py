"""Export mmeac models to ONNX and run them in ONNX Runtime.

What is exported (the graph's input is the normalised image batch
``[B, 3, H, W]``, float32, as the model's data preprocessor hands it over;
normalisation, resizing and post-processing stay outside the graph):

* ``backbone``: the EAC backbone alone, one output per ``out_indices``
  entry (feature maps ``[B, D, H/p, W/p]`` or global tokens ``[B, D]``);
* segmentors: the logits of ``model(x, mode='tensor')`` (the decode head's
  output, ``[B, classes, H/4, W/4]`` for UperNet);
* classifiers: the logits of ``model(x, mode='tensor')`` ``[B, classes]``;
* detectors: backbone + neck (the feature pyramid). The RPN head, proposal
  NMS, RoIAlign and the RoI heads (box / mask) with their post-processing
  are not exported: they need NMS / RoI ops that this path does not cover.

The core-periphery attention exports as standard ONNX ops
(:mod:`mmeac.ops.onnx`). The core budget is fixed at export time (one file
per budget); ``dynamic=True`` leaves the batch, height and width free.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..utils.fileio import atomic_path

__all__ = [
    'ExportWrapper', 'build_export_model', 'export_onnx', 'onnx_session',
    'run_onnx', 'PARTS'
]

#: What can be exported.
PARTS = ('auto', 'backbone')


def _flatten(out) -> Tuple[Tensor, ...]:
    if isinstance(out, Tensor):
        return (out, )
    if isinstance(out, dict):
        out = list(out.values())
    flat: List[Tensor] = []
    for item in out:
        flat.extend(_flatten(item))
    return tuple(flat)


class ExportWrapper(nn.Module):
    """``x -> tuple of tensors`` around the part of a model to export.

    Args:
        model (nn.Module): A segmentor / classifier / detector or a bare
            backbone.
        part (str): ``'model'`` (segmentor / classifier logits), ``'neck'``
            (backbone + neck) or ``'backbone'``.
    """

    def __init__(self, model: nn.Module, part: str) -> None:
        super().__init__()
        if part not in ('model', 'neck', 'backbone'):
            raise ValueError(f'unknown part {part!r}')
        self.model = model
        self.part = part

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if self.part == 'backbone':
            backbone = getattr(self.model, 'backbone', self.model)
            return _flatten(backbone(x))
        if self.part == 'neck':
            return _flatten(self.model.extract_feat(x))
        return _flatten(self.model(x, None, mode='tensor'))


def _task(model: nn.Module) -> str:
    names = [c.__module__.split('.')[0] for c in type(model).__mro__]
    for lib, task in (('mmseg', 'seg'), ('mmdet', 'det'), ('mmpretrain',
                                                           'cls')):
        if lib in names:
            return task
    return 'backbone'


def build_export_model(
        config,
        checkpoint: Optional[str] = None,
        part: str = 'auto',
        num_cores: Optional[int] = None,
        cfg_options: Optional[dict] = None) -> Tuple[ExportWrapper, Dict]:
    """Build the model of ``config`` (weights from ``checkpoint``) and wrap
    the part to export.

    Args:
        config (str | Config): An mmeac config (segmentor, detector or
            classifier with an EAC backbone).
        checkpoint (str, optional): Weights (random without).
        part (str): ``'auto'`` (segmentor / classifier logits, detector
            backbone + neck) or ``'backbone'``.
        num_cores (int, optional): Core budget frozen into the graph.
        cfg_options (dict, optional): Config overrides.

    Returns:
        tuple: The wrapper (eval mode, CPU) and an info dict (``task``,
        ``part``, ``num_cores``, ``patch_size``, ``in_channels``).

    Raises:
        ValueError: For an unknown part, a model without an EAC backbone,
            or a budget the model does not have.
        FileNotFoundError: For a missing config or checkpoint.
    """
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint

    from .inference import load_config, set_num_cores
    if part not in PARTS:
        raise ValueError(f'part must be one of {PARTS}, got {part!r}')
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model
    for d in (model_cfg, model_cfg.get('backbone', {})):
        if isinstance(d, dict):
            d.pop('init_cfg', None)
            d.pop('pretrained', None)
    model = MODELS.build(model_cfg)
    backbone = getattr(model, 'backbone', model)
    if not hasattr(backbone, 'allowed_budgets'):
        raise ValueError(f'{type(backbone).__name__} is not an EAC backbone')
    if num_cores is not None:
        set_num_cores(model, num_cores)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model.eval()
    task = _task(model)
    if part == 'backbone' or task == 'backbone':
        real_part = 'backbone'
    else:
        real_part = 'neck' if task == 'det' else 'model'
    info = dict(
        task=task,
        part=real_part,
        num_cores=backbone.num_cores,
        patch_size=backbone.patch_size,
        in_channels=backbone.patch_embed.proj.in_channels)
    return ExportWrapper(model, real_part).eval(), info


def export_onnx(wrapper: nn.Module,
                path: str,
                shape: Sequence[int],
                dynamic: bool = False,
                opset: int = 18,
                in_channels: int = 3,
                min_size: int = 16) -> List[str]:
    """Export ``wrapper`` (``x -> tuple``) to ``path``, atomically.

    Args:
        wrapper (nn.Module): From :func:`build_export_model`.
        path (str): The ``.onnx`` file (one file, weights inside).
        shape (Sequence[int]): ``(H, W)`` of the traced input.
        dynamic (bool): Batch, height and width free (``>= min_size``).
        opset (int): ONNX opset. Defaults to 18.
        in_channels (int): Image channels.
        min_size (int): Smallest dynamic height / width (one patch).

    Returns:
        list[str]: The output names.
    """
    from torch.export import Dim

    from mmeac.ops.onnx import onnx_export_mode, onnx_translation_table
    h, w = (int(s) for s in shape)
    # torch.export specialises a dim traced at size 1: trace a batch of 2
    x = torch.zeros(2 if dynamic else 1, in_channels, h, w)
    with torch.no_grad():
        n_out = len(wrapper(x))
    names = [f'output{i}' for i in range(n_out)]
    dynamic_shapes = None
    if dynamic:
        dynamic_shapes = {
            'x': {
                0: Dim('batch', min=1, max=1024),
                2: Dim('height', min=min_size, max=16384),
                3: Dim('width', min=min_size, max=16384)
            }
        }
    with onnx_export_mode(wrapper), torch.no_grad():
        program = torch.onnx.export(
            wrapper, (x, ),
            dynamo=True,
            opset_version=opset,
            input_names=['input'],
            output_names=names,
            dynamic_shapes=dynamic_shapes,
            custom_translation_table=onnx_translation_table(),
            verbose=False)
    with atomic_path(path, suffix='.onnx') as tmp:
        program.save(tmp, external_data=False)
    return names


def onnx_session(path: str, threads: Optional[int] = None):
    """An ONNX Runtime CPU session for ``path``."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(
        path, sess_options=opts, providers=['CPUExecutionProvider'])


def run_onnx(session, x: Union[Tensor, 'np.ndarray']) -> List:  # noqa: F821
    """Run a session on one input batch; returns numpy arrays."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return session.run(None, {session.get_inputs()[0].name: x})
