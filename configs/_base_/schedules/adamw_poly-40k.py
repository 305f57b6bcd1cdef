# Linear-probe schedule (EAC paper protocol): mmseg's 40k schedule with AdamW
# lr 0.01, weight decay 1e-4 and poly decay (power 1) to 0, no warmup. Only
# the head trains; the frozen backbone's parameters get no gradient and so
# are never changed by AdamW.
_base_ = 'mmseg::_base_/schedules/schedule_40k.py'
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.01, weight_decay=1e-4))
param_scheduler = _base_.param_scheduler
param_scheduler[0].update(eta_min=0.0, power=1.0)  # PolyLR over 40k iters
default_hooks = dict(
    checkpoint=dict(type='SafeCheckpointHook', max_keep_ckpts=3))
