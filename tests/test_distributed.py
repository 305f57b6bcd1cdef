"""Everything distributed, on 2 CPU processes over gloo, in one module.

One module fixture runs the real launchers (``tools/dist_train.sh`` and
``tools/dist_test.sh``, torchrun, ``tools/train.py`` / ``tools/test.py``) once
per task, segmentation and detection side by side:

* seg: the micro EAC UperNet with the ``SyncBN`` heads of the full EAC config
  (without CUDA the tools make them ``BN`` and use gloo by themselves), 4
  iterations and a validation, then a test at 8 cores, compared with a
  single-process test of the same checkpoint and with the mIoU recomputed
  from the gathered predictions;
* det: the tiny EAC Mask R-CNN, 2 iterations and a COCO validation on both
  ranks. (No 2-rank det test: the prediction gather of ``tools/test.py
  --out`` is task-agnostic and proven by the seg test; the det ``.pkl``
  itself by ``test_detection_tools.py``.)

The seg training carries :class:`DistProbeHook` (below; the workers import
this module through ``custom_imports``). On each rank it records every step's
budget, which core chunks got a gradient and the loss, and the final weights;
after training it runs the library-level checks on the same gloo group:
EACViT's per-rank coordinate augmentation and drop path under one shared
budget, with an RNG state that replays each rank's draws after a restore, and
EACDistiller's budgets under DDP. The launchers' argument errors and the
``srun`` command of the Slurm scripts need no processes of their own.
"""
import json
import os
import os.path as osp
import pickle
import signal
import subprocess

import pytest
import torch
import torch.distributed as dist
from _tool_helpers import (REPO, TOOLS, call_tool, free_port, log_text,
                           miou_from_predictions, run, tool_env, train_iters)
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch.nn.parallel import DistributedDataParallel as DDP

TESTS = osp.dirname(osp.abspath(__file__))
UPERNET = osp.join(REPO, 'configs', 'demo',
                   'upernet_eac-micro_1xb2-4it_builtin-ade20k-64x64.py')
MASK_RCNN = osp.join(
    REPO, 'configs', 'demo',
    'mask-rcnn_eac-tiny_sfp_1xb2-lsj-4it_builtin-coco-128.py')
# random-ish weights after 2 iterations: keep every box for the metric
DET_OPTS = ['model.test_cfg.rcnn.score_thr=0.0', 'randomness.seed=0']

# ------------------------------------------------- recorded on every rank


def _eac_vit_forwards(model, steps):
    """Train-mode forwards of the same images; per forward the budget, the
    coordinate draws and the last block's drop-path keep mask."""
    record, drawn = [], {}
    draw = model.rope.draw_augmentation

    def recording_draw(generator=None):
        out = draw(generator)
        drawn['coords'] = torch.cat([out['shift'], out['scale']]).tolist()
        return out

    def keep_mask(mod, args, out):
        drawn['keep'] = (out.flatten(1).abs().sum(1) > 0).tolist()

    model.rope.draw_augmentation = recording_draw
    handle = model.layers[-1].drop_path.register_forward_hook(keep_mask)
    with torch.no_grad():
        for _ in range(steps):
            model(torch.ones(4, 3, 32, 32))
            record.append(
                (model.last_num_cores, drawn['coords'], drawn['keep']))
    handle.remove()
    del model.rope.draw_augmentation
    return record


def _eac_vit_draws() -> dict:
    """6 forwards, the RNG state then (gathered from every rank), 4 more,
    and those 4 again after restoring rank 0's state (what a checkpoint
    holds)."""
    from mmeac.models import EACViT
    torch.manual_seed(0)  # MMEngine's default: one seed for every rank
    model = EACViT(
        arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0),
        max_cores=32,
        drop_path_rate=0.5).train()
    first = _eac_vit_forwards(model, 6)
    states = [None] * dist.get_world_size()
    dist.all_gather_object(states, model.rng_state())
    after = _eac_vit_forwards(model, 4)
    model.load_rng_state(states[0])
    replay = _eac_vit_forwards(model, 4)
    for state in states:
        state['budget'] = state['budget'].tolist()
    return dict(first=first, states=states, after=after, replay=replay)


def _distiller_steps(out_dir: str, steps: int = 8) -> dict:
    """EACDistiller trained under DDP, each rank on its own data: the budget
    of every step and the final weights. The frozen teacher is a wider EAC
    (any backbone can teach), saved by rank 0."""
    from mmeac.models import EACViT
    from mmeac.models.distillers import EACDistiller
    student = dict(
        type='EACViT',
        arch=dict(embed_dims=16, num_layers=2, num_heads=1, mlp_ratio=2.),
        patch_size=8,
        max_cores=32)
    teacher = dict(
        student,
        arch=dict(student['arch'], embed_dims=24),
        output_cls_token=True)
    ckpt = osp.join(out_dir, 'teacher.pth')
    if dist.get_rank() == 0:
        torch.manual_seed(0)
        kwargs = {k: v for k, v in teacher.items() if k != 'type'}
        torch.save(dict(state_dict=EACViT(**kwargs).state_dict()), ckpt)
    dist.barrier()
    torch.manual_seed(0)  # the same student on both ranks
    model = EACDistiller(
        backbone=student, teacher=teacher, teacher_ckpt=ckpt, input_size=32)
    model.init_weights()
    ddp = DDP(model, find_unused_parameters=True)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                            lr=1e-3)
    torch.manual_seed(100 + dist.get_rank())  # data and RNG per rank
    budgets = []
    for _ in range(steps):
        losses = ddp(torch.randn(2, 3, 32, 32), mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        loss.backward()
        opt.step()
        budgets.append(int(losses['num_cores']))
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    return dict(budgets=budgets, weights=weights.numpy())


@HOOKS.register_module(force=True)
class DistProbeHook(Hook):
    """Writes ``probe_rank{R}.pkl`` into ``out_dir`` on every rank.

    It holds each training step's ``(budget, [core chunk without gradient,
    ...], loss)`` (gradients as the optimizer step sees them), the final
    weights, and after training :func:`_eac_vit_draws` and
    :func:`_distiller_steps` run on the training's process group.
    """
    priority = 'LOWEST'

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.steps = []
        self.no_grad = None

    def _model(self, runner):
        model = runner.model
        return getattr(model, 'module', model)

    def before_train(self, runner) -> None:
        chunks = self._model(runner).backbone.core_chunks

        def record_grads(optimizer, args, kwargs):
            self.no_grad = [p.grad is None for p in chunks]

        runner.optim_wrapper.optimizer.register_step_pre_hook(record_grads)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        budget = self._model(runner).backbone.last_num_cores
        self.steps.append((budget, self.no_grad, float(outputs['loss'])))
        self.no_grad = None

    def after_train(self, runner) -> None:
        params = self._model(runner).parameters()
        record = dict(
            steps=self.steps,
            weights=torch.cat([p.detach().flatten() for p in params]).numpy(),
            eac_vit=_eac_vit_draws(),
            distiller=_distiller_steps(self.out_dir))
        path = osp.join(self.out_dir, f'probe_rank{dist.get_rank()}.pkl')
        with open(path, 'wb') as f:
            pickle.dump(record, f)


# ---------------------------------------------------------------- launches


class _Launch:
    """``tools/<script> ARGS`` started now, on a port of its own, with this
    module importable (``custom_imports``); output to files."""

    def __init__(self, script: str, *args: str, cwd: str, port: int):
        env = tool_env({'PORT': str(port)})
        env['PYTHONPATH'] = TESTS + os.pathsep + env['PYTHONPATH']
        self.cmd = ['bash', osp.join(TOOLS, script), *args]
        self.logs = [osp.join(cwd, f'{script}.{port}.{s}') for s in 'oe']
        with open(self.logs[0], 'w') as out, open(self.logs[1], 'w') as err:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True)

    def wait(self, timeout: int = 600) -> subprocess.CompletedProcess:
        code = self.proc.wait(timeout=timeout)
        texts = []
        for path in self.logs:
            with open(path, encoding='utf-8') as f:
                texts.append(f.read())
        return subprocess.CompletedProcess(self.cmd, code, *texts)


def _ports(n: int):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def _write(path: str, text: str) -> str:
    with open(path, 'w') as f:
        f.write(text)
    return path


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Train seg and det at once, then test seg (and the seg checkpoint in
    this process meanwhile). Paths and results in a dict."""
    from mmeac.testing import make_ade20k, make_coco
    base = str(tmp_path_factory.mktemp('dist'))
    ade = make_ade20k(
        osp.join(base, 'ade'), size=64, num_train=8, num_val=4, seed=0)
    # the det config reads data/coco/ under the working directory
    make_coco(
        osp.join(base, 'data'), size='150x110', num_train=6, num_val=4, seed=0)
    probe = osp.join(base, 'probe')
    os.mkdir(probe)
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    seg_cfg = _write(
        osp.join(base, 'seg.py'), f'_base_ = {UPERNET!r}\n'
        "norm_cfg = dict(type='SyncBN', requires_grad=True)\n"
        'model = dict(decode_head=dict(norm_cfg=norm_cfg))\n' +
        ''.join(f'{loader} = dict(dataset=dict(data_root={ade!r}))\n'
                for loader in loaders))
    seg_train_cfg = _write(
        osp.join(base, 'seg_train.py'), "_base_ = './seg.py'\n"
        "custom_imports = dict(imports=['test_distributed'], "
        'allow_failed_imports=False)\n'
        f"custom_hooks = [dict(type='DistProbeHook', out_dir={probe!r})]\n")
    r = dict(
        base=base,
        ade=ade,
        probe=probe,
        seg_dir=osp.join(base, 'seg'),
        det_dir=osp.join(base, 'det'))
    launched = []

    def start(*args, **kwargs):
        launched.append(_Launch(*args, **kwargs))
        return launched[-1]

    try:
        ports = _ports(2)
        seg = start(
            'dist_train.sh',
            seg_train_cfg,
            '2',
            '--work-dir',
            r['seg_dir'],
            cwd=base,
            port=ports[0])
        det = start(
            'dist_train.sh',
            MASK_RCNN,
            '2',
            '--work-dir',
            r['det_dir'],
            '--cfg-options',
            'train_cfg.max_iters=2',
            'train_cfg.val_interval=2',
            'train_dataloader.batch_size=1',
            *DET_OPTS,
            cwd=base,
            port=ports[1])
        r['seg_train'], r['det_train'] = seg.wait(), det.wait()

        seg_ckpt = osp.join(r['seg_dir'], 'iter_4.pth')
        budget = ['--cfg-options', 'model.backbone.num_cores=8']
        r['seg_out'] = osp.join(base, 'seg_test.pkl')
        seg = None
        ports = _ports(1)  # free now
        if osp.isfile(seg_ckpt):
            seg = start(
                'dist_test.sh',
                seg_cfg,
                seg_ckpt,
                '2',
                '--work-dir',
                osp.join(base, 'seg_test'),
                '--out',
                r['seg_out'],
                *budget,
                cwd=base,
                port=ports[0])
        if seg is not None:
            # the reference: one process, same checkpoint and budget (the
            # visualizer is a process-wide named instance: a name of its own)
            r['single_out'] = osp.join(base, 'single.json')
            r['single'] = call_tool(
                'tools/test.py',
                seg_cfg,
                seg_ckpt,
                '--work-dir',
                osp.join(base, 'single'),
                '--out',
                r['single_out'],
                *budget,
                f'visualizer.name=dist_single_{osp.basename(base)}',
                cwd=base)
        r['seg_test'] = seg and seg.wait()
    finally:  # a failed wait leaves no launch behind (each has a session)
        for launch in launched:
            if launch.proc.poll() is None:
                os.killpg(launch.proc.pid, signal.SIGKILL)
    return r


def _ok(proc, what):
    assert proc is not None, f'{what} did not run (its training failed)'
    assert proc.returncode == 0, proc.stderr[-3000:]


def _load(path: str):
    with open(path, 'rb') as f:
        return pickle.load(f)


# --------------------------------------------------------- segmentation


def test_seg_train_on_two_ranks(runs):
    proc = runs['seg_train']
    # (the config's SyncBN heads could not train on the CPU: the tools made
    # them BN)
    _ok(proc, 'seg training')
    text = log_text(runs['seg_dir'])
    assert 'Distributed training: True' in text
    assert 'GPU number: 2' in text  # MMEngine's name for the world size
    assert "backend='gloo'" in text
    assert train_iters(text) == [1, 2, 3, 4]
    # 4 validation images over 2 ranks: each rank ran 2 iterations
    assert 'Iter(val) [2/2]' in text and 'Iter(val) [4/4]' not in text
    for name in ('iter_2.pth', 'iter_4.pth'):
        assert osp.isfile(osp.join(runs['seg_dir'], name)), name


def test_seg_steps_one_budget_on_every_rank(runs):
    """Nested dropout under DDP in the real training: each step one budget
    on both ranks, the chunks past it without gradient on both, finite
    losses, and replicas that stay equal."""
    _ok(runs['seg_train'], 'seg training')
    r0, r1 = (
        _load(osp.join(runs['probe'], f'probe_rank{r}.pkl')) for r in (0, 1))
    assert len(r0['steps']) == len(r1['steps']) == 4
    budgets = [b for b, _, _ in r0['steps']]
    assert budgets == [b for b, _, _ in r1['steps']]
    assert len(set(budgets)) > 1, 'nested dropout drew a single budget'
    for (budget, none0, _), (_, none1, _) in zip(r0['steps'], r1['steps']):
        # 16 cores in chunks of 8: the chunks past the budget got no grad
        assert none0 == none1 == [i >= budget // 8 for i in range(2)]
    losses = [loss for rec in (r0, r1) for _, _, loss in rec['steps']]
    assert all(torch.isfinite(torch.tensor(losses)))
    torch.testing.assert_close(
        torch.from_numpy(r0['weights']), torch.from_numpy(r1['weights']))


def test_seg_test_gathers_both_ranks(runs):
    proc = runs['seg_test']
    _ok(proc, 'seg test')
    text = log_text(osp.join(runs['base'], 'seg_test'))
    assert 'Iter(test) [2/2]' in text and 'Iter(test) [4/4]' not in text
    result = _load(runs['seg_out'])
    # the predictions of both ranks were gathered: all 4 images, once each
    ade = runs['ade']
    paths = sorted(osp.basename(p['img_path']) for p in result['predictions'])
    assert paths == sorted(os.listdir(osp.join(ade, 'images', 'validation')))
    miou = float(result['metrics']['mIoU'])
    assert 0 <= miou <= 100
    expected = miou_from_predictions(result['predictions'], ade)
    assert abs(miou - expected) < 0.01, (miou, expected)
    # the single-process test at 8 cores scores the same
    single = runs['single']
    assert single.returncode == 0, single.stderr[-3000:]
    with open(runs['single_out']) as f:
        reference = json.load(f)['metrics']['mIoU']
    assert miou == pytest.approx(reference, abs=1e-6)


# ------------------------------------------------------------- detection


def test_det_train_on_two_ranks(runs):
    _ok(runs['det_train'], 'det training')
    text = log_text(runs['det_dir'])
    assert 'Distributed training: True' in text and 'GPU number: 2' in text
    assert train_iters(text) == [1, 2]
    assert 'coco/bbox_mAP:' in text and 'coco/segm_mAP:' in text
    ckpt = torch.load(
        osp.join(runs['det_dir'], 'iter_2.pth'),
        map_location='cpu',
        weights_only=False)
    assert ckpt['meta']['iter'] == 2


# ------------------------------------------- library level, on the same group


def _probes(runs):
    _ok(runs['seg_train'], 'seg training (which runs the probes)')
    return [
        _load(osp.join(runs['probe'], f'probe_rank{r}.pkl')) for r in (0, 1)
    ]


def test_eac_vit_per_rank_draws_shared_budget_restorable_state(runs):
    """Per-rank coordinate augmentation and drop path, one budget for all
    ranks, and a rank-independent RNG state that reproduces each rank's own
    draws after a restore."""
    p0, p1 = (p['eac_vit'] for p in _probes(runs))
    budgets0 = [b for b, _, _ in p0['first'] + p0['after']]
    budgets1 = [b for b, _, _ in p1['first'] + p1['after']]
    assert budgets0 == budgets1  # one budget on every rank
    assert len(set(budgets0)) > 1
    # coordinate augmentation and drop path drawn per rank
    for (_, c0, _), (_, c1, _) in zip(p0['first'], p1['first']):
        assert c0 != c1
    assert [k for _, _, k in p0['first']] != [k for _, _, k in p1['first']]
    # ... and not repeated from one forward to the next
    assert p0['first'][0][1] != p0['first'][1][1]
    # the saved state is the same on both ranks (rank 0's is enough)
    s0, s1 = p0['states']
    assert s0['seed'] == s1['seed'] and s0['aug_count'] == s1['aug_count']
    assert s0['budget'] == s1['budget']
    assert p1['states'] == p0['states']
    # restored from it, every rank repeats its own draws exactly
    for p in (p0, p1):
        assert len(p['replay']) == 4
        assert p['replay'] == p['after']


def test_distiller_budgets_same_on_both_ranks(runs):
    d0, d1 = (p['distiller'] for p in _probes(runs))
    assert d0['budgets'] == d1['budgets']
    assert len(set(d0['budgets'])) > 1, 'nested dropout drew a single budget'
    assert set(d0['budgets']) <= {8, 16, 24, 32}
    torch.testing.assert_close(
        torch.from_numpy(d0['weights']),
        torch.from_numpy(d1['weights']))  # replicas in sync


# ------------------------------------------- launcher arguments, no processes


@pytest.mark.parametrize('script,args,message', [
    ('dist_train.sh', ['no/such.py', '2'
                       ], "config file 'no/such.py' does not exist"),
    ('dist_train.sh', ['CONFIG', '0'], 'GPUS must be a positive integer'),
    ('dist_train.sh', ['CONFIG', 'two'], 'GPUS must be a positive integer'),
    ('dist_test.sh', ['CONFIG', 'no/such.pth', '2'
                      ], "checkpoint 'no/such.pth' does not exist"),
    ('dist_train.sh', ['CONFIG'], 'usage: dist_train.sh CONFIG GPUS'),
])
def test_dist_scripts_bad_input(script, args, message, tmp_path):
    config = tmp_path / 'cfg.py'
    config.write_text('x = 1\n')
    args = [str(config) if a == 'CONFIG' else a for a in args]
    proc = run(['bash', osp.join(TOOLS, script), *args],
               cwd=str(tmp_path),
               env=tool_env({'PORT': str(free_port())}),
               timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert sorted(os.listdir(tmp_path)) == ['cfg.py']


def test_dist_script_without_python(tmp_path):
    """Without GPUs the launcher checks its interpreter, not torch."""
    config = tmp_path / 'cfg.py'
    config.write_text('x = 1\n')
    proc = run(
        ['bash', osp.join(TOOLS, 'dist_train.sh'),
         str(config), '2'],
        cwd=str(tmp_path),
        env=tool_env({'PYTHON': str(tmp_path / 'no_python')}),
        timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip() == (
        f"dist_train.sh: error: no python at '{tmp_path / 'no_python'}'")
    assert sorted(os.listdir(tmp_path)) == ['cfg.py']


def test_scripts_are_executable():
    for name in ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
                 'slurm_test.sh'):
        assert os.access(osp.join(TOOLS, name), os.X_OK), name


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_slurm_scripts_call_srun(script, tmp_path):
    """The slurm scripts hand the right command to ``srun`` (a fake here)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    fake = bin_dir / 'srun'
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    config = tmp_path / 'cfg.py'
    config.write_text('x = 1\n')
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    fourth = str(tmp_path / 'wd') if script == 'slurm_train.sh' else str(ckpt)
    env = tool_env({
        'GPUS': '16',
        'GPUS_PER_NODE': '8',
        'CPUS_PER_TASK': '3',
        'SRUN_ARGS': '--quotatype=auto'
    })
    env['PATH'] = f'{bin_dir}{os.pathsep}{env["PATH"]}'
    proc = run([
        'bash',
        osp.join(TOOLS, script), 'part', 'job',
        str(config), fourth, '--cfg-options', 'a=1'
    ],
               cwd=str(tmp_path),
               env=env,
               timeout=60)
    assert proc.returncode == 0, proc.stderr
    argv = proc.stdout.splitlines()
    assert argv[:9] == [
        '-p', 'part', '--job-name=job', '--gres=gpu:8', '--ntasks=16',
        '--ntasks-per-node=8', '--cpus-per-task=3', '--kill-on-bad-exit=1',
        '--quotatype=auto'
    ]
    tool = 'train.py' if script == 'slurm_train.sh' else 'test.py'
    rest = argv[9:]
    assert rest[:3] == [env['PYTHON'], '-u', osp.join(TOOLS, tool)]
    assert rest[3] == str(config)
    if tool == 'train.py':
        assert rest[4:] == [
            f'--work-dir={fourth}', '--launcher=slurm', '--cfg-options', 'a=1'
        ]
    else:
        assert rest[4:] == [
            str(ckpt), '--launcher=slurm', '--cfg-options', 'a=1'
        ]
