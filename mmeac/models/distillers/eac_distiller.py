"""Distillation pretraining of an EAC student from a frozen ViT teacher.

The EAC recipe: the student's global token (final core 0) is matched to the
teacher's CLS token with a cosine loss, its patch tokens to the teacher's
patch tokens with cosine + MSE, through a linear projection when the widths
differ, under nested dropout over the core budgets (one budget per step, the
same on every rank: :meth:`EACViT.sample_train_budget`).
"""
import copy
import math
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from torch import Tensor, nn
from torch.nn import functional as F

from .losses import cosine_distill_loss, mse_distill_loss

__all__ = ['EACDistiller']

SizeLike = Union[int, Sequence[int]]
_DTYPES = {
    None: None,
    'fp32': None,
    'float32': None,
    'bf16': torch.bfloat16,
    'bfloat16': torch.bfloat16,
    'fp16': torch.float16,
    'float16': torch.float16,
}


def _parse_sizes(input_size) -> List[Tuple[int, int]]:
    """``256`` / ``(256, 320)`` (h, w) / ``[256, (512, 768)]`` -> [(h, w)]."""
    if isinstance(input_size, int):
        return [(input_size, input_size)]
    if isinstance(input_size, tuple):
        h, w = input_size
        return [(int(h), int(w))]
    sizes = []
    for item in input_size:
        if isinstance(item, int):
            sizes.append((item, item))
        else:
            h, w = item
            sizes.append((int(h), int(w)))
    if not sizes:
        raise ValueError('EACDistiller: input_size is empty')
    return sizes


@ROOT_MODELS.register_module(force=True)  # replaces the lazy builder
class EACDistiller(BaseSelfSupervisor):
    """Feature distillation of an :class:`EACViT` student (``backbone``).

    The student is kept under ``backbone`` (mmpretrain's convention), so a
    checkpoint of this model loads into every EAC downstream config through
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``: EACViT reduces a
    whole-model checkpoint to its ``backbone.`` keys. The teacher is left
    out of saved checkpoints by default (it is frozen and comes from its own
    checkpoint).

    Args:
        backbone (dict): The EAC student (``EACViT`` config). ``out_type``,
            ``output_cls_token`` and ``out_indices`` are set here, so that
            it returns the final patch map and global token.
        teacher (dict): Any backbone config of the model registry (e.g.
            mmpretrain's ``VisionTransformer`` with ``out_type='raw'``). Its
            last output must give a global token and patch tokens:
            ``[B, 1 + N, D]`` tokens (CLS first, ``num_extra_tokens`` of
            them), ``[patch map, global token]`` or, for the losses that
            need only one of them, ``[B, D, h, w]`` / ``[B, D]``.
        teacher_ckpt (str): The teacher's checkpoint; it must fit the
            teacher config exactly (no missing, unexpected or mis-shaped
            tensor).
        teacher_ckpt_prefix (str, optional): Keep only keys under it (and
            strip it). Defaults to ``'backbone.'`` for a whole-model
            checkpoint, none otherwise.
        teacher_dtype (str, optional): ``'bf16'`` or ``'fp16'``: run the
            teacher under autocast in that dtype on GPU (ignored on CPU).
        teacher_patch_size (int, optional): The teacher's patch size. When
            given, the teacher's input is resized to ``student grid x
            teacher_patch_size`` so both patch grids are equal (e.g. a
            patch-14 teacher sees 224 px where a patch-16 student sees
            256). Otherwise the teacher sees the student's image and its
            patch map is interpolated to the student's grid.
        input_size (int | tuple | list): The image size the run feeds
            (``s`` or an ``(h, w)`` tuple), or a list of them.
            The teacher is probed at each before training, to read its width
            and to reject sizes whose grids cannot be aligned. Defaults to
            224.
        proj (str): ``'auto'`` (a linear layer when the widths differ, else
            the identity), ``'linear'`` (always) or ``'none'``.
        cls_loss_weight (float): Weight of the global-token cosine loss.
        patch_cos_weight (float): Weight of the patch cosine loss.
        patch_mse_weight (float): Weight of the patch MSE loss.
        grid_interp (str): ``F.interpolate`` mode used to bring the
            teacher's patch map onto the student's grid. Defaults to
            ``'bilinear'``.
        save_teacher (bool): Keep the teacher's tensors in ``state_dict``.
            Defaults to False.
        data_preprocessor (dict, optional): mmpretrain's
            ``SelfSupDataPreprocessor`` by default.
        init_cfg (dict, optional): Initialisation config.
    """

    _quiet = False  # set while :meth:`preflight` builds a throw-away copy

    def __init__(self,
                 backbone: dict,
                 teacher: dict,
                 teacher_ckpt: str,
                 teacher_ckpt_prefix: Optional[str] = None,
                 teacher_dtype: Optional[str] = None,
                 teacher_patch_size: Optional[int] = None,
                 input_size: Union[SizeLike, Sequence[SizeLike]] = 224,
                 proj: str = 'auto',
                 cls_loss_weight: float = 1.0,
                 patch_cos_weight: float = 1.0,
                 patch_mse_weight: float = 1.0,
                 grid_interp: str = 'bilinear',
                 save_teacher: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not isinstance(backbone, dict):
            raise ValueError('EACDistiller: backbone (the student) must be '
                             'an EACViT config dict')
        backbone = copy.deepcopy(dict(backbone))
        backbone.update(
            out_type='featmap', output_cls_token=True, out_indices=-1)
        data_preprocessor = copy.deepcopy(data_preprocessor or {})
        if isinstance(data_preprocessor, dict):  # mmpretrain's, any scope
            data_preprocessor.setdefault('_scope_', 'mmpretrain')
        super().__init__(
            backbone=backbone,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if not hasattr(self.backbone, 'sample_train_budget'):
            raise ValueError('EACDistiller: backbone must be an EACViT, got '
                             f'{type(self.backbone).__name__}')
        if teacher_dtype not in _DTYPES:
            raise ValueError(f'EACDistiller: teacher_dtype must be one of '
                             f'{[k for k in _DTYPES if k]} or None, got '
                             f'{teacher_dtype!r}')
        if proj not in ('auto', 'linear', 'none'):
            raise ValueError("EACDistiller: proj must be 'auto', 'linear' or "
                             f"'none', got {proj!r}")
        weights = dict(
            cls_loss_weight=cls_loss_weight,
            patch_cos_weight=patch_cos_weight,
            patch_mse_weight=patch_mse_weight)
        if any(w < 0 for w in weights.values()) or not any(weights.values()):
            raise ValueError(f'EACDistiller: loss weights must be >= 0 and '
                             f'not all 0, got {weights}')
        self.cls_loss_weight = float(cls_loss_weight)
        self.patch_cos_weight = float(patch_cos_weight)
        self.patch_mse_weight = float(patch_mse_weight)
        self.teacher_dtype = _DTYPES[teacher_dtype]
        self.teacher_patch_size = teacher_patch_size
        self.grid_interp = grid_interp
        self.input_sizes = _parse_sizes(input_size)
        self.save_teacher = save_teacher

        # an mmpretrain backbone, whatever scope the caller is in (a
        # teacher config may name another with its own ``_scope_``)
        teacher = copy.deepcopy(teacher)
        teacher.setdefault('_scope_', 'mmpretrain')
        self.teacher = MODELS.build(teacher)
        self.teacher_name = type(self.teacher).__name__
        self._load_teacher(teacher_ckpt, teacher_ckpt_prefix)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        # Runner.init_weights must not re-initialise the loaded teacher
        self.teacher._is_init = True

        s_dims = self.backbone.embed_dims
        t_dims = None
        for hw in self.input_sizes:
            t_dims = self._probe(hw)
        if proj == 'linear' or (proj == 'auto' and s_dims != t_dims):
            self.proj = nn.Linear(s_dims, t_dims)
        elif s_dims != t_dims:
            raise ValueError(
                f"EACDistiller: student width {s_dims} and teacher width "
                f"{t_dims} differ but proj='none'; use proj='auto'")
        else:
            self.proj = nn.Identity()
        self.teacher_dims = t_dims
        if not save_teacher:
            self._register_state_dict_hook(_drop_teacher_keys)
            self._register_load_state_dict_pre_hook(
                _fill_teacher_keys, with_module=True)

    # -------------------------------------------------------------- teacher
    def _load_teacher(self, path: str, prefix: Optional[str]) -> None:
        where = f'teacher checkpoint {path}'
        if not isinstance(path, str) or not path:
            raise ValueError('EACDistiller: teacher_ckpt (the frozen '
                             "teacher's weights) is required")
        if '://' not in path and not osp.isfile(path):
            raise ValueError(f'EACDistiller: {where} does not exist')
        try:
            ckpt = CheckpointLoader.load_checkpoint(
                path, map_location='cpu', logger='silent')
        except Exception as err:  # unreadable file
            raise ValueError(f'EACDistiller: {where} cannot be read: '
                             f'{str(err).splitlines()[0]}') from None
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt,
                                                           dict) else None
        if not isinstance(state, dict):
            raise ValueError(f'EACDistiller: {where} holds no state dict')
        state = {
            (k[7:] if k.startswith('module.') else k): v
            for k, v in state.items()
        }
        own = self.teacher.state_dict()
        if prefix is None and not set(own) & set(state) and any(
                k.startswith('backbone.') for k in state):
            prefix = 'backbone.'
        if prefix:
            state = {
                k[len(prefix):]: v
                for k, v in state.items() if k.startswith(prefix)
            }
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        err_msgs: List[str] = []
        if not missing and not unexpected:
            try:
                self.teacher.load_state_dict(state, strict=True)
            except RuntimeError as err:
                err_msgs = re.findall(r'size mismatch for ([\w.]+)', str(err))
                err_msgs = err_msgs or [str(err).splitlines()[0]]
        if missing or unexpected or err_msgs:
            raise ValueError(
                f'EACDistiller: {where} does not fit the teacher config '
                f'({self.teacher_name}): missing keys {missing[:5]}, '
                f'unexpected keys {unexpected[:5]}, shape mismatches '
                f'{err_msgs[:5]}'
                f'{" (lists truncated)" if max(len(missing), len(unexpected), len(err_msgs)) > 5 else ""}'  # noqa: E501
            )
        if not self._quiet:
            print_log(
                f'EACDistiller: teacher {self.teacher_name} loaded from '
                f'{path}',
                logger='current')

    def train(self, mode: bool = True) -> 'EACDistiller':
        """Set train mode; the teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _split_teacher_output(self, out, img_hw: Tuple[int, int]):
        """Teacher output -> (global ``[B, D]`` | None, map | None)."""
        if isinstance(out, (tuple, list)) and out:
            out = out[-1]  # backbones return one entry per level: the last
        if isinstance(out, (tuple, list)):
            tensors = [t for t in out if isinstance(t, Tensor)]
            maps = [t for t in tensors if t.dim() == 4]
            globs = [t for t in tensors if t.dim() == 2]
            return (globs[0] if globs else None, maps[0] if maps else None)
        if not isinstance(out, Tensor):
            raise ValueError(f'EACDistiller: teacher {self.teacher_name} '
                             f'returned {type(out).__name__}, not tensors')
        if out.dim() == 4:
            return None, out
        if out.dim() == 2:
            return out, None
        if out.dim() != 3:
            raise ValueError(f'EACDistiller: teacher {self.teacher_name} '
                             f'output of shape {tuple(out.shape)} is not '
                             'tokens, a patch map or a global token')
        extra = int(getattr(self.teacher, 'num_extra_tokens', 1))
        glob = out[:, 0] if extra > 0 else None
        patches = out[:, extra:]
        n = patches.shape[1]
        h = max(1, round(math.sqrt(n * img_hw[0] / img_hw[1])))
        w = n // h
        if n == 0 or h * w != n:
            raise ValueError(
                f'EACDistiller: teacher {self.teacher_name} returned {n} '
                f'patch tokens for a {img_hw[0]}x{img_hw[1]} input, which '
                'do not form a grid of that aspect ratio')
        featmap = patches.transpose(1, 2).reshape(out.shape[0], -1, h, w)
        return glob, featmap

    def _teacher_input(self, x: Tensor, s_grid: Tuple[int, int]) -> Tensor:
        if self.teacher_patch_size is None:
            return x
        size = (s_grid[0] * self.teacher_patch_size,
                s_grid[1] * self.teacher_patch_size)
        if tuple(x.shape[-2:]) == size:
            return x
        return F.interpolate(
            x, size=size, mode='bicubic', align_corners=False, antialias=True)

    @torch.no_grad()
    def teacher_features(
            self, x: Tensor,
            s_grid: Tuple[int, int]) -> Tuple[Optional[Tensor], Tensor]:
        """Frozen teacher features aligned to the student's patch grid.

        Returns:
            tuple: global token ``[B, Dt]`` (or None) and patch map
            ``[B, Dt, *s_grid]`` (or None), float32.
        """
        x = self._teacher_input(x, s_grid)
        use_amp = self.teacher_dtype is not None and x.is_cuda
        with torch.autocast(
                'cuda', dtype=self.teacher_dtype or torch.float16,
                enabled=use_amp):
            out = self.teacher(x)
        glob, featmap = self._split_teacher_output(out, tuple(x.shape[-2:]))
        glob = None if glob is None else glob.float()
        if featmap is not None:
            featmap = self._align(featmap.float(), s_grid, tuple(x.shape[-2:]))
        return glob, featmap

    def _align(self, featmap: Tensor, s_grid: Tuple[int, int],
               img_hw: Tuple[int, int]) -> Tensor:
        t_grid = tuple(featmap.shape[-2:])
        if t_grid == tuple(s_grid):
            return featmap
        sy, sx = s_grid[0] / t_grid[0], s_grid[1] / t_grid[1]
        if abs(sy - sx) > 0.15 * max(sy, sx):
            raise ValueError(
                f'EACDistiller: teacher patch grid {t_grid[0]}x{t_grid[1]} '
                f'and student patch grid {s_grid[0]}x{s_grid[1]} (input '
                f'{img_hw[0]}x{img_hw[1]}) have different aspect ratios and '
                'cannot be aligned; check teacher_patch_size and the '
                "teacher's input size")
        down = t_grid[0] > s_grid[0] or t_grid[1] > s_grid[1]
        kwargs = {}
        if self.grid_interp in ('bilinear', 'bicubic'):
            kwargs = dict(align_corners=False, antialias=down)
        return F.interpolate(
            featmap, size=tuple(s_grid), mode=self.grid_interp, **kwargs)

    def _student_grid(self, hw: Tuple[int, int]) -> Tuple[int, int]:
        p = self.backbone.patch_size
        return hw[0] // p, hw[1] // p

    def _probe(self, hw: Tuple[int, int]) -> int:
        """Run the teacher once at ``hw``; check the alignment; its width."""
        s_grid = self._student_grid(hw)
        if min(s_grid) < 1:
            raise ValueError(f'EACDistiller: input {hw[0]}x{hw[1]} is '
                             'smaller than one student patch '
                             f'({self.backbone.patch_size})')
        in_ch = self.backbone.patch_embed.proj.in_channels
        x = torch.zeros(1, in_ch, *hw)
        try:
            glob, featmap = self.teacher_features(x, s_grid)
        except ValueError:
            raise
        except Exception as err:
            raise ValueError(
                f'EACDistiller: teacher {self.teacher_name} fails on a '
                f'{hw[0]}x{hw[1]} input: {str(err).splitlines()[0]}') from None
        need = []
        if self.cls_loss_weight > 0 and glob is None:
            need.append('a global (CLS) token, for cls_loss_weight > 0')
        if (self.patch_cos_weight > 0
                or self.patch_mse_weight > 0) and featmap is None:
            need.append('patch tokens, for the patch losses')
        if need:
            raise ValueError(
                f'EACDistiller: teacher {self.teacher_name} gives no '
                f'{" and no ".join(need)} (for mmpretrain ViTs set '
                "out_type='raw')")
        dims = {t.shape[1] for t in (glob, featmap) if t is not None}
        if len(dims) != 1:
            raise ValueError(f'EACDistiller: teacher global token and patch '
                             f'tokens have different widths {sorted(dims)}')
        return dims.pop()

    # ---------------------------------------------------------------- loss
    def loss(self,
             inputs: Union[Tensor, List[Tensor]],
             data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        """Distillation losses of one batch at one core budget.

        Returns:
            dict: ``loss_cls_cos``, ``loss_patch_cos``, ``loss_patch_mse``
            (weighted, those with a non-zero weight) and ``num_cores``, this
            step's budget (logged, not optimised).
        """
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise ValueError('EACDistiller takes one view per image, got '
                                 f'{len(inputs)}')
            inputs = inputs[0]
        featmap, glob = self.backbone(inputs)[-1]
        s_grid = tuple(featmap.shape[-2:])
        t_glob, t_map = self.teacher_features(inputs, s_grid)

        losses: Dict[str, Tensor] = {}
        if self.cls_loss_weight > 0:
            losses['loss_cls_cos'] = self.cls_loss_weight * \
                cosine_distill_loss(self.proj(glob), t_glob)
        if self.patch_cos_weight > 0 or self.patch_mse_weight > 0:
            s_tok = self.proj(featmap.flatten(2).transpose(1, 2))
            t_tok = t_map.flatten(2).transpose(1, 2)
            if self.patch_cos_weight > 0:
                losses['loss_patch_cos'] = self.patch_cos_weight * \
                    cosine_distill_loss(s_tok, t_tok)
            if self.patch_mse_weight > 0:
                losses['loss_patch_mse'] = self.patch_mse_weight * \
                    mse_distill_loss(s_tok, t_tok)
        losses['num_cores'] = torch.tensor(
            float(self.backbone.last_num_cores), device=inputs.device)
        return losses

    # ------------------------------------------------------------ preflight
    @classmethod
    def preflight(cls, model_cfg: dict) -> None:
        """Build the model once from its config, to fail before a run.

        A teacher checkpoint that does not fit its config, grids that cannot
        be aligned or a budget the student does not have raise a one-line
        ``ValueError`` here, before any runner writes to its work dir.
        """
        cfg = copy.deepcopy(dict(model_cfg))
        cfg.pop('type', None)
        cls._quiet = True
        try:
            cls(**cfg)  # the student's weights are loaded by init_weights
        finally:
            cls._quiet = False


def _drop_teacher_keys(module, state_dict, prefix, local_metadata):
    """State-dict hook: leave the frozen teacher out of checkpoints."""
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]


def _fill_teacher_keys(module, state_dict, prefix, local_metadata, strict,
                       missing_keys, unexpected_keys, error_msgs):
    """Load pre-hook: a checkpoint without the teacher keeps the loaded one."""
    if any(k.startswith(prefix + 'teacher.') for k in state_dict):
        return
    for key, value in module.teacher.state_dict().items():
        state_dict[f'{prefix}teacher.{key}'] = value
