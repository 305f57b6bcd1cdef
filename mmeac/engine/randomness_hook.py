"""Training randomness through checkpoints: exact resume, per-step budgets.

:class:`EACRandomnessHook` makes "train N iterations" and "train k, stop,
resume, train to N" draw the same random numbers:

* the EAC backbones' own generators (nested-dropout budget, per-rank
  coordinate augmentation and drop path; see ``EACViT.rng_state``) and the
  global torch RNG are saved in every checkpoint (key ``eac_rng_state``,
  next to ``state_dict``, so backbone state dicts stay as they were) and
  restored on resume;
* at each optimizer-step boundary it tells the backbones to draw a new
  budget, so one budget serves a whole optimizer step under gradient
  accumulation (``optim_wrapper.accumulative_counts``), as in the authors'
  training.

``tools/train.py`` adds it to every config (:func:`add_randomness_hook`).
"""
import logging
from typing import Dict, Iterator, Optional, Tuple

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn

__all__ = ['EACRandomnessHook', 'add_randomness_hook']

CKPT_KEY = 'eac_rng_state'


def _eac_backbones(model: nn.Module) -> Iterator[Tuple[str, nn.Module]]:
    """``(name, module)`` of every module with training RNG state."""
    if is_model_wrapper(model):
        model = model.module
    for name, mod in model.named_modules():
        if callable(getattr(mod, 'rng_state', None)) and callable(
                getattr(mod, 'load_rng_state', None)):
            yield name, mod


@HOOKS.register_module()
class EACRandomnessHook(Hook):
    """Save/restore training RNG states; one budget per optimizer step.

    Args:
        global_rng (bool): Also save and restore the global torch RNG (CPU,
            and CUDA where used), which heads (dropout), batch augments
            (Mixup/CutMix) and drop path outside EAC draw from. It is
            restored on every rank from rank 0's state, which is exact when
            ranks share a seed (MMEngine's default ``diff_rank_seed=False``);
            with ``diff_rank_seed=True`` on several ranks it is left alone.
            Defaults to True.
        budget_per_step (bool): One nested-dropout budget per optimizer step.
            Defaults to True.
    """
    priority = 'NORMAL'

    def __init__(self,
                 global_rng: bool = True,
                 budget_per_step: bool = True) -> None:
        self.global_rng = global_rng
        self.budget_per_step = budget_per_step
        self._pending: Optional[dict] = None

    # ------------------------------------------------------------- budgets
    def before_train(self, runner) -> None:
        for _, mod in _eac_backbones(runner.model):
            mod.budget_per_step = self.budget_per_step
        if self._pending is not None:
            self._restore(runner, self._pending)
            self._pending = None

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        if self._starts_optim_step(runner):
            for _, mod in _eac_backbones(runner.model):
                mod.begin_optim_step()

    @staticmethod
    def _starts_optim_step(runner) -> bool:
        """Whether this iteration's forward opens a new optimizer step."""
        wrapper = getattr(runner, 'optim_wrapper', None)
        wrappers = (
            list(wrapper.values())
            if hasattr(wrapper, 'values') else [wrapper])
        for w in wrappers:
            count = getattr(w, '_inner_count', None)
            acc = getattr(w, '_accumulative_counts', None)
            if count is None or not acc:
                return True
            if count % acc == 0:
                return True
        return False

    # ---------------------------------------------------------- checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state: Dict[str, object] = dict(
            version=1,
            backbones={
                name: mod.rng_state()
                for name, mod in _eac_backbones(runner.model)
            })
        if self.global_rng:
            state['torch'] = torch.get_rng_state()
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                state['cuda'] = torch.cuda.get_rng_state()
        checkpoint[CKPT_KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # only a resumed run continues the random streams; a ``load_from``
        # (fine-tuning start) draws afresh
        if not getattr(runner, '_resume', False):
            return
        state = checkpoint.get(CKPT_KEY)
        if state is None:
            print_log(
                'EACRandomnessHook: the checkpoint holds no RNG state (made '
                'without this hook); training continues with fresh draws, '
                'so it will not repeat an uninterrupted run exactly',
                logger='current',
                level=logging.WARNING)
            return
        # applied in before_train: Runner.resume may reseed after loading
        self._pending = state

    def _restore(self, runner, state: dict) -> None:
        saved = state.get('backbones', {})
        for name, mod in _eac_backbones(runner.model):
            if name in saved:
                mod.load_rng_state(saved[name])
            else:
                print_log(
                    f'EACRandomnessHook: no RNG state for {name or "model"} '
                    'in the checkpoint; it draws afresh',
                    logger='current',
                    level=logging.WARNING)
        if not self.global_rng or 'torch' not in state:
            return
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        if get_world_size() > 1 and randomness.get('diff_rank_seed'):
            print_log(
                'EACRandomnessHook: diff_rank_seed=True: the global torch RNG '
                'of each rank is not restored (only rank 0 saves)',
                logger='current',
                level=logging.WARNING)
            return
        torch.set_rng_state(state['torch'].cpu())
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state['cuda'].cpu())


def add_randomness_hook(cfg) -> None:
    """Add :class:`EACRandomnessHook` to ``cfg.custom_hooks`` unless there.

    Args:
        cfg (mmengine.Config): A training config (changed in place).
    """
    hooks = list(cfg.get('custom_hooks', None) or [])
    if any(
            h.get('type') in ('EACRandomnessHook', EACRandomnessHook)
            for h in hooks if isinstance(h, dict)):
        return
    hooks.append(dict(type='EACRandomnessHook'))
    cfg.custom_hooks = hooks
