"""Elastic Attention Cores (EAC) Vision Transformer backbone.

C learned core tokens attend to every token while the N patch tokens attend to
the cores only (:mod:`mmeac.ops`), so one layer costs ``2NC + C^2`` query-key
pairs instead of ``(N + C)^2``. Trained with nested dropout over the core
axis, one model runs at any core budget C (a multiple of ``core_chunk`` up to
``max_cores``) at test time.
"""
import logging
import math
import os
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import broadcast, get_rank, get_world_size
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...errors import NonFiniteInputError
from ..layers import AxialRoPE2D, EACBlock, farthest_point_coords
from ..utils.dropin_checks import check_in_model
from .veca_checkpoint import (ARCH_ZOO, load_veca_or_mmeac,
                              rope_settings_mismatch)

__all__ = ['EACViT', 'CoreCoordUpdate']

_MASK64 = (1 << 64) - 1


def _mix_seed(*values: int) -> int:
    """A 63-bit seed mixing ``values`` (splitmix64 rounds)."""
    h = 0x9E3779B97F4A7C15
    for value in values:
        z = (h ^ (int(value) & _MASK64)) + 0x9E3779B97F4A7C15
        z &= _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        h = z ^ (z >> 31)
    return h & ((1 << 63) - 1)


class CoreCoordUpdate(nn.Module):
    """``rho <- rho + alpha * Linear(D, 2)(core features)`` before a block."""

    def __init__(self, embed_dims: int, alpha: float = 0.01) -> None:
        super().__init__()
        self.linear = nn.Linear(embed_dims, 2)
        self.alpha = nn.Parameter(torch.full((1, ), alpha))

    def forward(self, rho: Tensor, cores: Tensor) -> Tensor:
        return rho + self.alpha * self.linear(cores)


@MODELS.register_module()
class EACViT(BaseModule):
    """Elastic Attention Cores ViT.

    The token sequence is ``[cores[:C]; patches]``. Each output level (one per
    ``out_indices`` entry) is the patch map ``[B, D, H/p, W/p]``, the global
    token (final core 0) ``[B, D]``, or both, depending on ``out_type`` and
    ``output_cls_token``. Pixels beyond the last whole patch are dropped, as
    in the authors' model.

    Args:
        arch (str | dict): A name of :attr:`arch_zoo` (``'s'`` or
            ``'small'``, ``'s+'`` or ``'small-plus'``, ``'b'`` or ``'base'``,
            ``'l'`` or ``'large'``) or a dict with ``embed_dims``,
            ``num_layers``, ``num_heads``, ``mlp_ratio``.
        patch_size (int): Patch size. Defaults to 16.
        in_channels (int): Image channels. Defaults to 3.
        max_cores (int): Size M of the core bank. Defaults to 64.
        core_chunk (int): Budgets are multiples of it. Defaults to 8.
        num_cores (int, optional): Budget in eval mode; settable at run time
            (``model.backbone.num_cores = 16``). Defaults to ``max_cores``.
        train_budgets (Sequence[int]): Nested-dropout budgets drawn in train
            mode, ascending. Defaults to all multiples of ``core_chunk``.
        train_budget_weights (Sequence[float], optional): Their sampling
            weights. Defaults to the authors' ``(1, 1, 2, 2, 3, 3, 4, 4)``
            for the 8-budget default, else uniform.
        train_num_cores (int, optional): Force one fixed training budget
            (no nested dropout). Defaults to None.
        out_indices (int | Sequence[int]): Blocks whose outputs are returned;
            negative values count from the end. Defaults to -1.
        final_norm (bool): Apply the final LayerNorm to the last block's
            output. Defaults to True.
        out_type (str): ``'featmap'`` (``[B, D, h, w]``), ``'cls_token'``
            (global token ``[B, D]``) or ``'avg_featmap'`` (mean of the patch
            tokens ``[B, D]``, as mmpretrain's ViT; after the final norm when
            ``final_norm``). Defaults to ``'featmap'``.
        output_cls_token (bool): With ``'featmap'``, return each level as
            ``[featmap, global]`` as mmseg's ViT does. Defaults to False.
        frozen_stages (int): ``0`` freezes the patch embedding and the core
            bank, ``i`` also blocks ``< i`` (and the coordinate updates that
            feed them), ``num_layers`` everything including the final norm.
            Frozen parts stay in eval mode. Defaults to -1 (nothing frozen).
        drop_path_rate (float): Stochastic depth, linear over depth.
        with_cp (bool): Activation checkpointing. Defaults to False.
        attn_cfg (dict, optional): Attention module config (``MODELS``);
            defaults to ``dict(type='CorePeripheryAttention')``.
        ffn_cfg (dict, optional): FFN module config (``MODELS``); defaults
            to ``dict(type='InplaceSwiGLUFFN')``; ``'SwiGLUFFN'`` keeps the
            gate out of place at inference too.
        rope_cfg (dict, optional): :class:`AxialRoPE2D` kwargs
            (``zero_freq_ratio``, training-time ``shift``, ``rescale``,
            ``jitter``).
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-5.
        pretrained (str, optional): Checkpoint path, as mmseg backbones
            take it (mmseg's ``EncoderDecoder`` passes ``model.pretrained``
            here); becomes ``init_cfg=dict(type='Pretrained', ...)``. When
            ``init_cfg`` is given too, ``init_cfg`` wins and ``pretrained``
            (typically the base config's own ViT weights) is ignored with a
            warning. Defaults to None.
        nonfinite_input (str): In eval mode, an input holding NaN or inf
            (global attention spreads one bad pixel to every output) raises
            a ``NonFiniteInputError`` (``'error'``), logs a warning
            (``'warn'``) or is not checked (``'off'``). Defaults to
            ``'error'``.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            loads an mmeac or authors' checkpoint and requires every tensor to
            fit this architecture (a ``ValueError`` names the keys that do
            not) and the RoPE settings an authors' or converted file records
            to equal ``rope_cfg``'s (a ``ValueError`` names the setting).
    """
    # name -> settings, with aliases as in mmpretrain's ViT
    arch_zoo = {
        **dict.fromkeys(('s', 'small'), ARCH_ZOO['s']),
        **dict.fromkeys(('s+', 'small-plus'), ARCH_ZOO['s+']),
        **dict.fromkeys(('b', 'base'), ARCH_ZOO['b']),
        **dict.fromkeys(('l', 'large'), ARCH_ZOO['l']),
    }
    default_budget_weights = (1, 1, 2, 2, 3, 3, 4, 4)
    num_extra_tokens = 0  # cores are not position-embedded extra tokens
    out_types = ('featmap', 'cls_token', 'avg_featmap')

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 patch_size: int = 16,
                 in_channels: int = 3,
                 max_cores: int = 64,
                 core_chunk: int = 8,
                 num_cores: Optional[int] = None,
                 train_budgets: Optional[Sequence[int]] = None,
                 train_budget_weights: Optional[Sequence[float]] = None,
                 train_num_cores: Optional[int] = None,
                 out_indices: Union[int, Sequence[int]] = -1,
                 final_norm: bool = True,
                 out_type: str = 'featmap',
                 output_cls_token: bool = False,
                 frozen_stages: int = -1,
                 drop_path_rate: float = 0.0,
                 with_cp: bool = False,
                 attn_cfg: Optional[dict] = None,
                 ffn_cfg: Optional[dict] = None,
                 rope_cfg: Optional[dict] = None,
                 norm_eps: float = 1e-5,
                 pretrained: Optional[str] = None,
                 nonfinite_input: str = 'error',
                 init_cfg: Optional[dict] = None) -> None:
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise TypeError('EACViT: pretrained must be a checkpoint path '
                                f'(str) or None, got {type(pretrained)}')
            if init_cfg is None:
                init_cfg = dict(type='Pretrained', checkpoint=pretrained)
                if '://' not in pretrained and not os.path.exists(pretrained):
                    print_log(
                        f'EACViT: pretrained={pretrained!r} does not exist, '
                        'so init_weights will fail; if it is the base '
                        "config's own ViT checkpoint, set model.pretrained="
                        'None and give EAC weights with model.backbone.'
                        "init_cfg=dict(type='Pretrained', checkpoint=...)",
                        logger='current',
                        level=logging.WARNING)
            else:
                print_log(
                    f'EACViT: ignoring pretrained={pretrained!r} (e.g. the '
                    'base config\'s model.pretrained) because init_cfg is '
                    f'set: {init_cfg}',
                    logger='current',
                    level=logging.WARNING)
        super().__init__(init_cfg=init_cfg)
        if nonfinite_input not in ('error', 'warn', 'off'):
            raise ValueError("nonfinite_input must be 'error', 'warn' or "
                             f"'off', got {nonfinite_input!r}")
        self.nonfinite_input = nonfinite_input
        self.arch_settings = self._parse_arch(arch)
        self.embed_dims = self.arch_settings['embed_dims']
        self.num_layers = self.arch_settings['num_layers']
        self.num_heads = self.arch_settings['num_heads']
        self.mlp_ratio = self.arch_settings['mlp_ratio']
        self.patch_size = patch_size

        if core_chunk < 1 or max_cores < core_chunk or max_cores % core_chunk:
            raise ValueError(f'max_cores ({max_cores}) must be a positive '
                             f'multiple of core_chunk ({core_chunk})')
        self.max_cores = max_cores
        self.core_chunk = core_chunk
        self.allowed_budgets = tuple(
            range(core_chunk, max_cores + 1, core_chunk))
        self.num_cores = max_cores if num_cores is None else num_cores
        self._set_train_budgets(train_budgets, train_budget_weights)
        self.train_num_cores = (None if train_num_cores is None
                                else self._check_budget(
                                    train_num_cores, 'train_num_cores'))
        self.last_num_cores: Optional[int] = None

        if out_type not in self.out_types:
            raise ValueError(f'EACViT: out_type must be one of '
                             f'{list(self.out_types)}, got {out_type!r}')
        self.out_type = out_type
        self.output_cls_token = output_cls_token
        self.out_indices = self._parse_out_indices(out_indices)
        self.final_norm = final_norm
        self.frozen_stages = frozen_stages

        dims = self.embed_dims
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(
            in_channels, dims, kernel_size=patch_size, stride=patch_size)
        num_chunks = max_cores // core_chunk
        self.core_chunks = nn.ParameterList([
            nn.Parameter(torch.randn(core_chunk, dims) / math.sqrt(dims))
            for _ in range(num_chunks)
        ])
        # sampled on the CPU (a seeded generator), then on the device the
        # other parameters are made on (``with torch.device('meta')``, ...)
        rho = torch.atanh(
            farthest_point_coords(max_cores).clamp(-0.999, 0.999)).to(
                torch.get_default_device())
        self.core_coord_chunks = nn.ParameterList(
            [nn.Parameter(c.clone()) for c in rho.split(core_chunk)])
        self.coord_updates = nn.ModuleList(
            [CoreCoordUpdate(dims) for _ in range(self.num_layers - 1)])

        dpr = torch.linspace(
            0, drop_path_rate, self.num_layers, device='cpu').tolist()
        self.layers = nn.ModuleList([
            EACBlock(
                dims,
                self.num_heads,
                self.mlp_ratio,
                attn_cfg=attn_cfg,
                ffn_cfg=ffn_cfg,
                drop_path=dpr[i],
                norm_eps=norm_eps,
                with_cp=with_cp) for i in range(self.num_layers)
        ])
        self.ln_final = nn.LayerNorm(dims, eps=norm_eps)
        self.rope = AxialRoPE2D(dims // self.num_heads, **(rope_cfg or {}))
        self._init_training_rng()
        self._freeze_stages()
        # once, on the first forward inside a model: does the model's neck
        # or head take what this backbone gives? (one-line error otherwise)
        self.register_forward_pre_hook(check_in_model)

    # ------------------------------------------------------------ settings
    def _parse_arch(self, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            key = arch.lower()
            if key not in self.arch_zoo:
                raise ValueError(f'arch {arch!r} is not one of '
                                 f'{sorted(self.arch_zoo)}')
            return dict(self.arch_zoo[key])
        need = {'embed_dims', 'num_layers', 'num_heads', 'mlp_ratio'}
        if not isinstance(arch, dict) or not need <= set(arch):
            raise ValueError(f'a custom arch must be a dict with keys '
                             f'{sorted(need)}, got {arch!r}')
        return {k: arch[k] for k in need}

    def _parse_out_indices(self, out_indices) -> List[int]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        parsed = []
        for idx in out_indices:
            real = idx + self.num_layers if idx < 0 else idx
            if not 0 <= real < self.num_layers:
                raise ValueError(f'out index {idx} is out of range for '
                                 f'{self.num_layers} layers')
            parsed.append(real)
        return parsed

    def _check_budget(self, value, name: str = 'num_cores') -> int:
        if isinstance(value, bool) or int(value) != value or (
                int(value) not in self.allowed_budgets):
            raise ValueError(
                f'{name}={value!r} is not a core budget of this model: it '
                f'must be a multiple of core_chunk={self.core_chunk} between '
                f'{self.core_chunk} and max_cores={self.max_cores}, i.e. one '
                f'of {list(self.allowed_budgets)}')
        return int(value)

    @property
    def num_cores(self) -> int:
        """Core budget used in eval mode."""
        return self._num_cores

    @num_cores.setter
    def num_cores(self, value: int) -> None:
        self._num_cores = self._check_budget(value)

    def _set_train_budgets(self, budgets, weights) -> None:
        budgets = tuple(self.allowed_budgets if budgets is None else budgets)
        for b in budgets:
            self._check_budget(b, 'train_budgets entry')
        if list(budgets) != sorted(set(budgets)):
            raise ValueError(f'train_budgets must be strictly ascending, got '
                             f'{list(budgets)}')
        if weights is None:
            weights = (
                self.default_budget_weights if len(budgets) == len(
                    self.default_budget_weights) else (1, ) * len(budgets))
        if len(weights) != len(budgets) or min(weights) <= 0:
            raise ValueError(f'train_budget_weights must be {len(budgets)} '
                             f'positive numbers (one per budget), got '
                             f'{list(weights)}')
        self.train_budgets = budgets
        self.train_budget_weights = tuple(float(w) for w in weights)

    # ------------------------------------------------------- training RNG
    def _init_training_rng(self) -> None:
        """Own generators for the training-time random draws.

        * budgets: one generator, seeded alike on every rank (rank 0's draw
          is broadcast as well), so every process drops the same cores;
        * coordinate augmentation and drop path: one generator reseeded
          before each train-mode forward from ``(seed, rank, count)``, so
          every rank draws its own augmentation, as the authors' do.

        The seed comes from ``torch.initial_seed()`` at the first training
        forward (MMEngine's ``randomness`` seed). :meth:`rng_state` /
        :meth:`load_rng_state` (used by ``EACRandomnessHook``) carry them
        through a checkpoint, so a resumed run draws what an uninterrupted
        one would. Nothing of this is in the state dict.
        """
        self._rng_seed: Optional[int] = None
        self._budget_gen = torch.Generator()
        self._aug_gen = torch.Generator()
        self._aug_count = 0
        #: Set by ``EACRandomnessHook``: keep one budget per optimizer step
        #: (until :meth:`begin_optim_step`) instead of one per forward.
        self.budget_per_step = False
        self._step_budget: Optional[int] = None
        for layer in self.layers:
            layer.drop_path.generator = self._aug_gen

    def _seed_training_rng(self, seed: Optional[int] = None) -> None:
        if seed is None:
            seed = torch.initial_seed()
        self._rng_seed = int(seed)
        self._budget_gen.manual_seed(_mix_seed(self._rng_seed, 0xB0D9E7))
        self._aug_count = 0

    def _next_aug_generator(self) -> torch.Generator:
        """Reseed the augmentation generator for this forward (per rank)."""
        if self._rng_seed is None:
            self._seed_training_rng()
        self._aug_gen.manual_seed(
            _mix_seed(self._rng_seed, 0xA06, get_rank(), self._aug_count))
        self._aug_count += 1
        return self._aug_gen

    def rng_state(self) -> dict:
        """The training RNG state (identical on every rank)."""
        if self._rng_seed is None:
            self._seed_training_rng()
        return dict(
            seed=self._rng_seed,
            aug_count=self._aug_count,
            budget=self._budget_gen.get_state(),
            step_budget=self._step_budget)

    def load_rng_state(self, state: dict) -> None:
        """Restore what :meth:`rng_state` returned."""
        self._rng_seed = int(state['seed'])
        self._aug_count = int(state['aug_count'])
        self._budget_gen.set_state(state['budget'].cpu())
        self._step_budget = state.get('step_budget')

    def begin_optim_step(self) -> None:
        """Mark an optimizer-step boundary: with ``budget_per_step`` the next
        training forward draws a new budget, later ones reuse it."""
        self._step_budget = None

    def sample_train_budget(self) -> int:
        """Draw this step's budget; identical on every process.

        Drawn from the model's own budget generator with
        ``train_budget_weights``; rank 0's draw is broadcast, so all ranks of
        a distributed run drop the same cores. With ``budget_per_step`` (set
        by ``EACRandomnessHook``) one budget serves every forward until the
        next :meth:`begin_optim_step`, as with gradient accumulation.
        """
        if self.train_num_cores is not None:
            return self.train_num_cores
        if self.budget_per_step and self._step_budget is not None:
            return self._step_budget
        if self._rng_seed is None:
            self._seed_training_rng()
        weights = torch.tensor(self.train_budget_weights)
        idx = torch.multinomial(weights, 1, generator=self._budget_gen)
        if get_world_size() > 1:
            broadcast(idx, src=0)
        budget = self.train_budgets[int(idx)]
        if self.budget_per_step:
            self._step_budget = budget
        return budget

    # ------------------------------------------------------------- freezing
    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        mods: List[nn.Module] = [self.patch_embed]
        n = min(self.frozen_stages, self.num_layers)
        mods += list(self.layers[:n])
        mods += list(self.coord_updates[:max(n - 1, 0)])
        if self.frozen_stages >= self.num_layers:
            mods.append(self.ln_final)
        return mods

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for p in list(self.core_chunks) + list(self.core_coord_chunks):
            p.requires_grad = False
        for mod in self._frozen_modules():
            mod.eval()
            for p in mod.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'EACViT':
        """Set train mode; frozen parts (or a fully frozen model) stay eval.
        """
        super().train(mode)
        if mode and self.frozen_stages >= self.num_layers:
            super().train(False)
        elif mode:
            for mod in self._frozen_modules():
                mod.eval()
        return self

    # ----------------------------------------------------------------- init
    def init_weights(self) -> None:
        if (isinstance(self.init_cfg, dict)
                and self.init_cfg.get('type') == 'Pretrained'):
            self.load_pretrained(self.init_cfg['checkpoint'],
                                 self.init_cfg.get('prefix'))
            self._is_init = True
            return
        super().init_weights()
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                trunc_normal_(mod.weight, std=0.02)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.LayerNorm):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None) -> None:
        """Load an mmeac or an authors' (VECA) checkpoint, strictly.

        Raises:
            ValueError: Naming missing keys, unexpected keys and shape
                mismatches when the checkpoint does not fit this model.
        """
        state, settings = load_veca_or_mmeac(
            checkpoint, prefix, with_settings=True)
        self._check_checkpoint_settings(checkpoint, settings)
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        mismatched = [
            f'{k}: checkpoint {tuple(state[k].shape)} vs model '
            f'{tuple(own[k].shape)}' for k in own
            if k in state and state[k].shape != own[k].shape
        ]
        if missing or unexpected or mismatched:
            arch = dict(self.arch_settings, max_cores=self.max_cores)
            raise ValueError(
                f'checkpoint {checkpoint} does not fit EACViT({arch}): '
                f'shape mismatches {mismatched[:8]}, missing keys '
                f'{missing[:8]}, unexpected keys {unexpected[:8]}'
                f'{" (lists truncated)" if max(len(missing), len(unexpected), len(mismatched)) > 8 else ""}'  # noqa: E501
            )
        self.load_state_dict(state, strict=True)
        print_log(f'EACViT: loaded {checkpoint}', logger='current')

    def _check_checkpoint_settings(self, checkpoint: str,
                                   settings: dict) -> None:
        """Refuse a checkpoint whose recorded RoPE settings differ."""
        stored = settings.get('rope_cfg')
        if stored is None:
            return
        diff = rope_settings_mismatch(stored, self.rope.settings())
        if diff:
            name, (ckpt_value, own_value) = next(iter(diff.items()))
            want = ', '.join(f'{k}={v[0]!r}' for k, v in diff.items())
            raise ValueError(
                f'checkpoint {checkpoint} was trained with RoPE {name}='
                f'{ckpt_value!r} but this EACViT has {name}={own_value!r}; '
                f'build it with rope_cfg=dict({want}) to use this '
                'checkpoint')

    # -------------------------------------------------------------- forward
    def get_layer_depth(self,
                        param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Layer depth of a parameter, for layer-wise learning-rate decay.

        Patch embedding and the core bank are depth 0, block ``i`` (and the
        coordinate update that feeds it) ``i + 1``; the final norm and every
        parameter outside ``prefix`` (necks, heads) ``num_layers + 1``.

        Returns:
            tuple[int, int]: (layer depth, total depths = num_layers + 2).
        """
        total = self.num_layers + 2
        if not param_name.startswith(prefix):
            return total - 1, total
        name = param_name[len(prefix):]
        bank = ('patch_embed', 'core_chunks', 'core_coord_chunks')
        if name.startswith(bank):
            return 0, total
        if name.startswith('layers.'):
            return int(name.split('.')[1]) + 1, total
        if name.startswith('coord_updates.'):
            return int(name.split('.')[1]) + 2, total
        return total - 1, total

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x)
            raise ValueError(f'EACViT expects images [B, C, H, W], got '
                             f'{shape}')
        if x.shape[-1] < self.patch_size or x.shape[-2] < self.patch_size:
            raise ValueError(f'image {tuple(x.shape[-2:])} is smaller than '
                             f'one {self.patch_size}x{self.patch_size} patch')

    def _check_finite(self, x: Tensor) -> None:
        """Refuse (or warn about) NaN / inf in an eval-mode input.

        Skipped while tracing (``torch.compile``, ``torch.export``, ONNX
        export: a data-dependent branch cannot be part of a graph) and on
        the ``meta`` device (FLOP counting), where there are no values.
        """
        if (self.training or self.nonfinite_input == 'off'
                or torch.compiler.is_compiling() or x.device.type == 'meta'
                or bool(torch.isfinite(x).all())):
            return
        bad = (~torch.isfinite(x)).flatten(1).sum(1)
        msg = (f'EACViT input holds NaN/inf ({int(bad.sum())} values, in '
               f'images {bad.nonzero().flatten().tolist()} of the batch); '
               'global attention would spread them to every output')
        if self.nonfinite_input == 'error':
            raise NonFiniteInputError(msg)
        print_log(msg, logger='current', level=logging.WARNING)

    def _cores(self, num_cores: int, batch: int) -> Tuple[Tensor, Tensor]:
        n = num_cores // self.core_chunk
        cores = torch.cat(list(self.core_chunks[:n]), dim=0)
        rho = torch.cat(list(self.core_coord_chunks[:n]), dim=0)
        return (cores.unsqueeze(0).expand(batch, -1, -1),
                rho.unsqueeze(0).expand(batch, -1, -1))

    def _format(self, tokens: Tensor, c: int, hw: Tuple[int, int]):
        if self.out_type == 'cls_token':
            return tokens[:, 0]
        if self.out_type == 'avg_featmap':
            return tokens[:, c:].mean(dim=1)
        b = tokens.shape[0]
        featmap = tokens[:, c:].transpose(1, 2).reshape(b, -1, *hw)
        if self.output_cls_token:
            return [featmap, tokens[:, 0]]
        return featmap

    def forward(self, x: Tensor) -> tuple:
        """Args:
            x (Tensor): Images ``[B, in_channels, H, W]`` with H, W >= patch.

        Returns:
            tuple: One entry per ``out_indices`` entry (see class doc).
        """
        self._check_input(x)
        self._check_finite(x)
        num_cores = (
            self.sample_train_budget() if self.training else self.num_cores)
        self.last_num_cores = num_cores
        gen = None
        if self.training and not torch.compiler.is_compiling():
            gen = self._next_aug_generator()  # coords and drop path
        b = x.shape[0]
        patches = self.patch_embed.proj(x)
        hw = tuple(patches.shape[-2:])
        patches = patches.flatten(2).transpose(1, 2)
        cores, rho = self._cores(num_cores, b)
        # float32 cores + 16-bit patches (autocast) -> a float32 residual
        # stream, as in the authors' model; the blocks' matmuls still run
        # in the autocast dtype
        dtype = torch.promote_types(cores.dtype, patches.dtype)
        tokens = torch.cat([cores.to(dtype), patches.to(dtype)], dim=1)
        patch_rope = self.rope.patch_tables(
            hw[0], hw[1], x.device, augment=self.training,
            generator=gen).expand(b, -1, -1)

        outs = []
        for i, layer in enumerate(self.layers):
            if i > 0:
                rho = self.coord_updates[i - 1](rho, tokens[:, :num_cores])
            rope = torch.cat([self.rope.tables(torch.tanh(rho)), patch_rope],
                             dim=1)
            tokens = layer(tokens, num_cores, rope)
            if i == self.num_layers - 1 and self.final_norm:
                tokens = self.ln_final(tokens)
            if i in self.out_indices:
                outs.append(self._format(tokens, num_cores, hw))
        return tuple(outs)
