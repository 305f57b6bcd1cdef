"""Load only the part of a checkpoint that fits the model, and say so."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..checkpoint import describe_mismatch, match_state_dict, weights_of


@HOOKS.register_module()
class CheckpointAdaptHook(Hook):
    """Keep the tensors of a loaded checkpoint that fit the model.

    Runs on ``after_load_checkpoint`` (before MMEngine copies the weights
    into the model): the names of a backbone-only file are prefixed with
    ``backbone.`` when that fits more tensors, the tensors that are not in
    the model or have another shape are dropped, and one warning line says
    how many tensors are loaded and what was skipped. The tools add it for
    ``--partial-load``; without it they refuse a checkpoint that does not
    fit exactly.
    """

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        state = weights_of(checkpoint)
        match = match_state_dict(shapes, state)
        checkpoint['state_dict'] = {
            name: state[name[len(match.prefix):]]
            for name in match.loaded
        }
        checkpoint.pop('model', None)
        msg = (f'partial load: {len(match.loaded)} of {len(shapes)} model '
               f'tensors loaded')
        if match.prefix:
            msg += f" (file names prefixed with '{match.prefix}')"
        if not match.exact:
            msg += f'; skipped {describe_mismatch(match)}'
        runner.logger.warning(msg)
