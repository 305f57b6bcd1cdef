"""Latency, throughput and peak memory: EAC vs its dense twin and ViT peers.

Side by side in one run, for each image size, model and core budget:

* models: ``eac`` (EACViT, one row per budget), ``dense`` (the same network
  with dense attention, at the largest budget), and three plain ViTs with
  the width / depth / heads of ``--arch`` (``--arch b``: ViT-B/16, MLP
  ratio 4, GELU, learned position embedding built at the benchmarked size):

  - ``sdpa_vit``: mmpretrain's ``VisionTransformer``, whose attention is
    ``F.scaled_dot_product_attention`` (fused: ATen's flash kernel on CPU,
    flash / memory-efficient kernels on CUDA), i.e. a dense ViT-B as
    strong as PyTorch makes it;
  - ``win_vit``: the ViTDet / SAM-style windowed ViT-B, mmpretrain's
    ``ViTSAM`` (14 x 14 windows, global attention in blocks 3, 6, 9 and
    12, decomposed relative-position bias, no neck) with its attention
    through ``F.scaled_dot_product_attention`` and the bias as the mask
    (``mmeac.analysis.vit_peers.FusedViTSAM``, as timm's ViT-SAM; fused:
    ATen's CPU flash kernel with an additive mask);
  - ``vit``: mmseg's own ``VisionTransformer`` (the ViT settings of mmseg's
    ViT-B configs), whose ``nn.MultiheadAttention`` materialises the
    attention matrices (the slowest peer, kept for continuity);
* scopes: ``backbone`` and ``model`` (the whole segmentor: an mmseg
  ``EncoderDecoder`` with a linear head, or with ``--config`` the config's
  segmentor / detector / classifier with its backbone swapped for each
  peer);
* modes: ``forward`` (eval, ``torch.no_grad``) and ``train`` (train mode,
  forward + backward of the sum of the raw outputs; losses and label
  assignment are not part of it, the EAC budget is fixed with
  ``train_num_cores``; with batch 1, BatchNorm layers use their running
  statistics, since one image cannot be batch-normalised).

Timing: the models of one (scope, size, mode) are timed round-robin
(``mmeac.analysis.benchmark.time_interleaved``: each round times every
case once, starting from a different one), so that load drifts fall on
all of them alike and the ratios are fair; median of ``--repeats`` rounds
after ``--warmup`` rounds; CUDA events (synchronised) on GPU,
``time.perf_counter`` on CPU. Peak memory: the
largest amount of tensor memory the step allocates on top of what existed
before it (``torch.cuda.max_memory_allocated`` on GPU; on CPU the running
sum of every allocation / free of PyTorch's CPU allocator recorded by
``torch.profiler(profile_memory=True)``), measured on the first warmup run
(an extra run with ``--warmup 0``).
Cases whose attention matrices (mmseg ViT materialises them) would not fit
in memory are skipped and reported as such, and so are cases whose forward
FLOPs exceed ``--max-gflops`` (e.g. the dense twin at 4096 px, which would
take most of an hour on two CPU cores).

The report lists the EAC speed goals where their cases were measured: EAC
at its largest budget vs ``sdpa_vit`` and ``win_vit`` at 1024 px, vs
``sdpa_vit`` at 2048 px, and EAC's t(4096) / t(2048). The machine's load
average at the start and end is recorded (other processes distort CPU
timings).

Writes ``benchmark.json``, ``benchmark.md`` (tables + fitted exponent of
time vs number of patches N) and ``benchmark.png`` to ``--out-dir``; where
one of them exists already the tool stops before measuring, unless
``--overwrite``.

Examples::

    python tools/analysis_tools/benchmark.py --out-dir work_dirs/bench
    python tools/analysis_tools/benchmark.py --sizes 512 1024 \\
        --budgets 16 64 --scopes backbone --modes forward --repeats 3
    python tools/analysis_tools/benchmark.py --arch '{"embed_dims": 64,
        "num_layers": 2, "num_heads": 2, "mlp_ratio": 2.66667}' \\
        --max-cores 16 --budgets 8 16 --sizes 64 96 --repeats 1 \\
        --out-dir /tmp/b
    python tools/analysis_tools/benchmark.py --config CONFIG --scopes model
"""
from __future__ import annotations
import argparse
import copy
import gc
import json
import os
import os.path as osp
import platform
import signal
import sys
import time
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from mmeac.utils import cli

if TYPE_CHECKING:
    import torch

#: The files written to ``--out-dir``.
OUTPUTS = ('benchmark.json', 'benchmark.md', 'benchmark.png')
SCOPES = ('backbone', 'model')
MODES = ('forward', 'train')
KINDS = ('eac', 'dense', 'sdpa_vit', 'win_vit', 'vit')
#: Peers that are built by this tool (not by ``peer_backbone_cfg``).
TOOL_PEERS = ('sdpa_vit', 'win_vit')
LABELS = dict(
    eac='EAC',
    dense='EAC dense twin',
    sdpa_vit='ViT (SDPA)',
    win_vit='windowed ViT (ViTSAM, SDPA)',
    vit='mmseg ViT')
#: Attention kernel of each model, for the report.
KERNELS = dict(
    eac='mmeac core-periphery op (compiled CPU kernel / fused flash)',
    dense='F.scaled_dot_product_attention (fused flash)',
    sdpa_vit='F.scaled_dot_product_attention (fused flash), mmpretrain ViT',
    win_vit='F.scaled_dot_product_attention (fused flash, relative-position '
    'bias as mask), mmpretrain ViTSAM: 14x14 windows + 4 global blocks',
    vit='nn.MultiheadAttention (materialised attention matrices), mmseg ViT')
WINDOW = 14


# ------------------------------------------------------------ ViT peers
def _register_peers() -> None:
    from mmengine.registry import MODELS

    from mmeac.analysis.vit_peers import FusedViTSAM
    MODELS.register_module('BenchFusedViTSAM', module=FusedViTSAM, force=True)


def global_blocks(num_layers: int) -> list:
    """SAM's global-attention blocks: the last of each quarter of the
    depth (2, 5, 8, 11 of ViT-B's 12)."""
    return sorted({(i + 1) * num_layers // 4 - 1 for i in range(4)} - {-1})


def tool_peer_cfg(kind: str,
                  arch: dict,
                  size: int,
                  patch_size: int = 16) -> dict:
    """Backbone config of a ``sdpa_vit`` / ``win_vit`` peer of ``arch``."""
    d, layers = arch['embed_dims'], arch['num_layers']
    vit_arch = dict(
        embed_dims=d,
        num_layers=layers,
        num_heads=arch['num_heads'],
        feedforward_channels=4 * d)
    common = dict(
        img_size=size,
        patch_size=patch_size,
        out_type='featmap',
        drop_rate=0.0,
        drop_path_rate=0.0)
    if kind == 'sdpa_vit':
        return dict(
            type='mmpretrain.VisionTransformer',
            arch=vit_arch,
            with_cls_token=True,
            final_norm=True,
            **common)
    if kind == 'win_vit':
        return dict(
            type='BenchFusedViTSAM',
            arch=dict(vit_arch, global_attn_indexes=global_blocks(layers)),
            out_channels=0,
            use_rel_pos=True,
            window_size=WINDOW,
            **common)
    raise ValueError(f'not a tool peer: {kind!r}')


def windowed_vit_flops(embed_dims: int,
                       num_layers: int,
                       num_patches_hw,
                       patch_size: int = 16,
                       batch_size: int = 1) -> int:
    """Forward FLOPs of the windowed ViT (linear layers on the real
    tokens, window attention on the padded grid; the relative-position
    terms, under 1% of the total, are left out)."""
    from mmeac.ops.flops import vit_backbone_flops
    h, w = num_patches_hw
    n = h * w
    base = vit_backbone_flops(
        embed_dims,
        num_layers,
        4,
        n,
        num_extra_tokens=0,
        patch_size=patch_size,
        batch_size=batch_size)
    padded = (h + -h % WINDOW) * (w + -w % WINDOW)
    n_global = len(global_blocks(num_layers))
    attn = 4 * batch_size * embed_dims * (
        n_global * n * n + (num_layers - n_global) * padded * WINDOW**2)
    return base['linear'] + attn


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark EAC against its dense twin and mmseg ViT.')
    parser.add_argument(
        '--config',
        help='config of an EAC model; its model is the "model" scope and '
        'its backbone the "backbone" scope (default: EACViT --arch and a '
        'linear-head EncoderDecoder)')
    parser.add_argument(
        '--arch',
        default='b',
        help='EAC arch without --config: s, s+, b, l or a JSON dict '
        '(default b); the ViT peer uses its width/depth/heads')
    parser.add_argument('--max-cores', type=int, default=64)
    parser.add_argument(
        '--sizes',
        type=int,
        nargs='+',
        default=[512, 1024, 2048],
        help='square image sizes in px (default 512 1024 2048)')
    parser.add_argument(
        '--budgets',
        type=int,
        nargs='+',
        default=None,
        help='EAC core budgets (default 8 16 32 64, capped at max cores)')
    parser.add_argument(
        '--models', nargs='+', default=list(KINDS), choices=KINDS)
    parser.add_argument(
        '--scopes', nargs='+', default=list(SCOPES), choices=SCOPES)
    parser.add_argument(
        '--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument(
        '--max-seconds',
        type=float,
        default=120.0,
        help='stop repeating a case once its timed runs took this long '
        '(at least one run is timed; default 120)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--num-classes', type=int, default=150)
    parser.add_argument(
        '--device', default='auto', help='auto (default), cpu or cuda')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch.set_num_threads (default: torch default)')
    parser.add_argument(
        '--no-memory', action='store_true', help='skip peak memory')
    parser.add_argument(
        '--system-malloc',
        action='store_true',
        help='leave glibc malloc as it is (default: keep large freed '
        'blocks for reuse, see mmeac.analysis.cpu_malloc)')
    parser.add_argument(
        '--mem-limit-gb',
        type=float,
        default=None,
        help='skip cases estimated to need more (default: 80%% of the '
        'memory available at start)')
    parser.add_argument(
        '--max-gflops',
        type=float,
        default=None,
        help='skip cases whose backbone forward needs more GFLOPs (x3 for '
        'train), i.e. that would take too long; they are reported as '
        'skipped with the estimate')
    parser.add_argument(
        '--single-run',
        action='store_true',
        help='one run per case: the peak-memory run (profiled, no warmup) '
        'is also the timed run; for cases that take minutes each')
    parser.add_argument(
        '--skip',
        nargs='+',
        default=[],
        metavar='KIND@SIZE',
        help='cases not to run, e.g. win_vit@2048 dense@4096 (reported as '
        'skipped on request, with their FLOPs)')
    parser.add_argument('--seed', type=int, default=0)
    cli.add_no_progress(parser)
    parser.add_argument(
        '--out-dir', required=True, help='where results are written')
    cli.add_overwrite(parser, 'the results in --out-dir')
    cli.add_cfg_options(parser)
    return parser.parse_args(argv)


# ------------------------------------------------------------------ setup
class Plan:
    """Validated settings and the model configs of every case."""

    def __init__(self, args: argparse.Namespace) -> None:
        from mmeac.analysis.analysis_models import (eac_backbone_cfg,
                                                    load_model_config,
                                                    parse_arch)
        if args.repeats < 1 or args.warmup < 0:
            raise ValueError('--repeats must be >= 1 and --warmup >= 0')
        if args.batch_size < 1:
            raise ValueError('--batch-size must be >= 1')
        for item in args.skip:
            kind, _, size = item.partition('@')
            if kind not in KINDS or not size.isdigit():
                raise ValueError(f'--skip {item}: expected KIND@SIZE with '
                                 f'KIND one of {list(KINDS)}')
        self.sizes = sorted(set(args.sizes))
        if min(self.sizes) < 16:
            raise ValueError(f'--sizes must be at least one 16 px patch, got '
                             f'{args.sizes}')
        self.model_cfg = None
        if args.config:
            if not osp.isfile(args.config):
                raise ValueError(f'config file {args.config} does not exist')
            cfg = load_model_config(args.config, args.cfg_options)
            model_cfg = cfg.model.to_dict()
            backbone = model_cfg.get('backbone') or {}
            if str(backbone.get('type', '')).split('.')[-1] != 'EACViT':
                raise ValueError(f'config {args.config}: model.backbone is '
                                 'not an EACViT')
            for d in (model_cfg, backbone):
                d.pop('init_cfg', None)
                d.pop('pretrained', None)
            self.backbone_cfg = backbone
            self.model_cfg = model_cfg
        else:
            self.backbone_cfg = eac_backbone_cfg(
                parse_arch(args.arch), max_cores=args.max_cores)
        probe = self._build_backbone('eac')
        self.patch_size = probe.patch_size
        self.embed_dims = probe.embed_dims
        self.arch = dict(probe.arch_settings)
        self.max_cores = probe.max_cores
        budgets = args.budgets or [
            b for b in (8, 16, 32, 64) if b <= probe.max_cores
        ] or [probe.max_cores]
        for b in budgets:
            probe.num_cores = b  # ValueError naming the allowed budgets
        self.budgets = sorted(set(budgets))
        del probe

    def _backbone_cfg(self, kind: str, size: int) -> dict:
        from mmeac.analysis.analysis_models import peer_backbone_cfg
        if kind in TOOL_PEERS:
            if self.backbone_cfg.get('out_type', 'featmap') != 'featmap':
                raise ValueError(f'the {kind} peer gives feature maps only')
            return tool_peer_cfg(kind, self.arch, size, self.patch_size)
        return peer_backbone_cfg(self.backbone_cfg, kind, (size, size))

    def _build_backbone(self, kind: str, size: int = 224):
        from mmeac.analysis.analysis_models import build_model
        return build_model(self._backbone_cfg(kind, size))

    def build(self, kind: str, scope: str, size: int, num_classes: int):
        from mmeac.analysis.analysis_models import (build_model,
                                                    linear_segmentor)
        backbone = self._backbone_cfg(kind, size)
        if scope == 'backbone':
            return build_model(backbone)
        if self.model_cfg is None:
            return build_model(
                linear_segmentor(backbone, self.embed_dims, num_classes))
        cfg = copy.deepcopy(self.model_cfg)
        cfg['backbone'] = backbone
        return build_model(cfg)


def _estimated_bytes(kind: str, mode: str, arch: dict, tokens: int,
                     batch: int) -> int:
    """Rough lower bound of the attention memory of a step.

    mmseg's ViT (``nn.MultiheadAttention`` with attention weights) holds
    ``heads x L^2`` score matrices: about 3 at a time in a forward, one per
    layer (plus 2) kept for a backward. The windowed ViT holds its
    ``heads x L^2`` relative-position bias in each global block (about 2 at
    a time in a forward, one per global block plus 2 for a backward). EAC,
    its dense twin and the SDPA ViT never hold an ``L^2`` matrix on CPU.
    """
    per_matrix = batch * arch['num_heads'] * tokens * tokens * 4
    if kind == 'vit':
        return per_matrix * (3 if mode == 'forward' else arch['num_layers'] +
                             2)
    if kind == 'win_vit':
        return per_matrix * (2 if mode == 'forward' else
                             len(global_blocks(arch['num_layers'])) + 2)
    return 0


def _cases(args, plan: Plan) -> List[Dict]:
    cases = []
    for scope in args.scopes:
        for kind in args.models:
            for size in plan.sizes:
                budgets = plan.budgets if kind == 'eac' else (
                    [max(plan.budgets)] if kind == 'dense' else [None])
                for budget in budgets:
                    for mode in args.modes:
                        cases.append(
                            dict(
                                scope=scope,
                                kind=kind,
                                size=size,
                                budget=budget,
                                mode=mode))
    return cases


def _freeze_batch_norm(model) -> None:
    """BatchNorm layers in eval mode: one image cannot be batch-normalised
    (e.g. a pooled 1x1 map in UperNet's PPM), so a batch-1 training step
    uses the running statistics."""
    import torch
    for mod in model.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.eval()


def _set_budget(model, budget: Optional[int]) -> None:
    backbone = getattr(model, 'backbone', model)
    if budget is not None and hasattr(backbone, 'train_num_cores'):
        backbone.num_cores = budget
        backbone.train_num_cores = budget


# -------------------------------------------------------------- measuring
def _step_fn(model,
             scope: str,
             mode: str,
             inputs,
             samples,
             budget: Optional[int] = None):
    """One measured step of ``model`` (at EAC core budget ``budget``)."""
    import torch

    from mmeac.analysis.analysis_models import output_sum, tensor_forward

    def forward():
        _set_budget(model, budget)
        if scope == 'backbone':
            return model(inputs)
        return tensor_forward(model, inputs, samples)

    if mode == 'forward':

        def run(zero_grad: bool = True):
            with torch.no_grad():
                return forward()
    else:

        def run(zero_grad: bool = True):
            if zero_grad:
                model.zero_grad(set_to_none=True)
            loss = output_sum(forward())
            loss.backward()

    return run


def _case_entry(args, plan: Plan, case: Dict) -> Dict:
    """The result entry of ``case`` before measuring: its size in patches
    and tokens and its backbone FLOPs."""
    from mmeac.ops.flops import eac_backbone_flops, vit_backbone_flops
    kind, size, budget = case['kind'], case['size'], case['budget']
    a = plan.arch
    n = (size // plan.patch_size)**2
    tokens = n + (budget or 0) if kind in ('eac', 'dense') else (
        n + 1 if kind in ('vit', 'sdpa_vit') else n)
    if kind == 'win_vit':
        side = size // plan.patch_size
        flops = windowed_vit_flops(
            a['embed_dims'],
            a['num_layers'], (side, side),
            patch_size=plan.patch_size,
            batch_size=args.batch_size)
    elif kind in ('vit', 'sdpa_vit'):
        flops = vit_backbone_flops(
            a['embed_dims'],
            a['num_layers'],
            4,
            n,
            patch_size=plan.patch_size,
            batch_size=args.batch_size)['total']
    else:
        flops = eac_backbone_flops(
            a['embed_dims'],
            a['num_layers'],
            a['mlp_ratio'],
            n,
            budget,
            patch_size=plan.patch_size,
            dense=kind == 'dense',
            batch_size=args.batch_size)['total']
    return dict(
        case,
        model=LABELS[kind],
        num_patches=n,
        tokens=tokens,
        batch_size=args.batch_size,
        backbone_gflops_forward=flops / 1e9)


def _skip_reason(args, plan: Plan, entry: Dict, limit: float) -> str:
    """Why ``entry`` is not run ('' when it is)."""
    kind, size, mode = entry['kind'], entry['size'], entry['mode']
    gflops = entry['backbone_gflops_forward'] * (3 if mode == 'train' else 1)
    need = _estimated_bytes(kind, mode, plan.arch, entry['tokens'],
                            args.batch_size)
    if f'{kind}@{size}' in args.skip:
        return f'not run (--skip; estimated {gflops:.0f} GFLOPs)'
    if args.max_gflops is not None and gflops > args.max_gflops:
        return (f'estimated {gflops:.0f} GFLOPs > --max-gflops '
                f'{args.max_gflops:.0f}')
    if need > limit:
        return (f'estimated attention memory {need / 2**30:.1f} GiB > '
                f'limit {limit / 2**30:.1f} GiB')
    return ''


def _failure(err: BaseException) -> str:
    msg = str(err).splitlines()[0][:200] if str(err) else repr(err)
    return f'failed: {type(err).__name__}: {msg}'


def measure(args, plan: Plan, device: torch.device,
            results: List[Dict]) -> List[Dict]:
    """Run every case, appending one entry per case to ``results``.

    The cases of one (scope, size, mode) form a group: each model is built
    once, every case's peak memory is measured on its own, then the cases
    are timed round-robin. Entries are appended group by group, so that an
    interrupted run keeps the groups it finished.
    """
    import torch

    from mmeac.analysis import release_freed_memory
    from mmeac.analysis.analysis_models import make_data_samples
    from mmeac.analysis.benchmark import (available_memory_bytes,
                                          peak_memory_bytes, summarize_times,
                                          time_interleaved)
    limit = (
        args.mem_limit_gb * 2**30 if args.mem_limit_gb is not None else 0.8 *
        available_memory_bytes(device))
    cases = _cases(args, plan)
    groups: Dict[Tuple, List[Dict]] = {}
    for case in cases:
        groups.setdefault((case['scope'], case['size'], case['mode']),
                          []).append(case)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(
            total=len(cases),
            desc='benchmark',
            file=sys.stderr,
            dynamic_ncols=True)
    for (scope, size, mode), group in groups.items():
        entries, runs, models, run = [], {}, {}, None
        gen = torch.Generator().manual_seed(args.seed)
        inputs = torch.randn(
            args.batch_size, 3, size, size, generator=gen).to(device)
        for case in group:
            kind, budget = case['kind'], case['budget']
            if bar is not None:
                bar.set_postfix_str(
                    f'{scope} {kind} {size}px '
                    f'{"C=%d " % budget if budget else ""}{mode}')
            entry = _case_entry(args, plan, case)
            entries.append(entry)
            reason = _skip_reason(args, plan, entry, limit)
            if reason:
                entry['skipped'] = reason
                continue
            if kind not in models:
                torch.manual_seed(args.seed)
                model = plan.build(kind, scope, size, args.num_classes)
                model = model.to(device)
                model.train(mode == 'train')
                if mode == 'train' and args.batch_size == 1:
                    _freeze_batch_norm(model)
                models[kind] = model
            model = models[kind]
            samples = make_data_samples(model, args.batch_size, size, size)
            run = _step_fn(model, scope, mode, inputs, samples, budget)
            runs[id(entry)] = run
            if args.no_memory:
                continue
            # an extra, profiled run (it doubles as a warmup run);
            # gradients start unallocated
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            try:
                entry['peak_mem_mb'] = peak_memory_bytes(
                    lambda: run(zero_grad=False), device) / 2**20
            except (RuntimeError, MemoryError, ValueError) as err:  # OOM
                entry['skipped'] = _failure(err)
                del runs[id(entry)]
            entry['_profiled_s'] = time.perf_counter() - t0
        timed = [e for e in entries if id(e) in runs]
        try:
            if args.single_run and not args.no_memory:
                # the profiled run is the timed run
                times = {id(e): [e['_profiled_s']] for e in timed}
            elif timed:
                warmup = args.warmup if args.no_memory else max(
                    args.warmup - 1, 0)
                times = time_interleaved({id(e): runs[id(e)]
                                          for e in timed}, device,
                                         args.repeats, warmup,
                                         args.max_seconds)
        except (RuntimeError, MemoryError, ValueError) as err:
            for e in timed:
                e['skipped'] = _failure(err)
            timed = []
        for e in timed:
            stats = summarize_times(times[id(e)])
            e.update(
                latency_ms=stats['median'] * 1e3,
                latency_ms_runs=[t * 1e3 for t in times[id(e)]],
                latency_ms_std=stats['std'] * 1e3,
                throughput_img_s=args.batch_size / stats['median'])
        for e in entries:
            e.pop('_profiled_s', None)
        results.extend(entries)
        for model in models.values():
            model.zero_grad(set_to_none=True)
        runs.clear()
        models.clear()
        run = inputs = None
        gc.collect()
        release_freed_memory()  # hand the kept heap back between groups
        if bar is not None:
            bar.update(len(group))
    if bar is not None:
        bar.close()
    return results


# ---------------------------------------------------------------- reports
def _label(r: Dict) -> str:
    return r['model'] + (f" C={r['budget']}" if r['kind'] == 'eac' else '')


def scaling(results: List[Dict]) -> List[Dict]:
    """Fitted exponent k of latency ~ N^k per (scope, mode, model)."""
    from mmeac.ops.flops import fit_power_law
    groups: Dict[Tuple, List[Dict]] = {}
    for r in results:
        if 'latency_ms' in r:
            groups.setdefault((r['scope'], r['mode'], _label(r)), []).append(r)
    out = []
    for (scope, mode, label), rs in groups.items():
        if len({r['num_patches'] for r in rs}) < 2:
            continue  # an exponent needs two sizes
        rs = sorted(rs, key=lambda r: r['num_patches'])
        ns = [r['num_patches'] for r in rs]
        out.append(
            dict(
                scope=scope,
                mode=mode,
                model=label,
                num_patches=ns,
                sizes=[r['size'] for r in rs],
                time_exponent=fit_power_law(ns, [r['latency_ms'] for r in rs]),
                memory_exponent=fit_power_law(
                    ns, [r['peak_mem_mb'] for r in rs]) if all(
                        r.get('peak_mem_mb') for r in rs) else None))
    return out


REF_KINDS = ('vit', 'dense', 'sdpa_vit', 'win_vit')


def _speedups(results: List[Dict]) -> None:
    """Add ``speedup_vs_<peer>`` (latency ratios) and
    ``memory_ratio_vs_<peer>`` for every peer measured at the same size."""
    ref = {}
    for r in results:
        if 'latency_ms' in r and r['kind'] in REF_KINDS:
            ref[(r['kind'], r['scope'], r['mode'], r['size'])] = r
    for r in results:
        if 'latency_ms' not in r:
            continue
        for kind in REF_KINDS:
            other = ref.get((kind, r['scope'], r['mode'], r['size']))
            if other is not None and r['kind'] != kind:
                r[f'speedup_vs_{kind}'] = other['latency_ms'] / r['latency_ms']
                if 'peak_mem_mb' in r and other.get('peak_mem_mb'):
                    r[f'memory_ratio_vs_{kind}'] = r['peak_mem_mb'] / other[
                        'peak_mem_mb']


def _fmt(v, spec: str = '.1f') -> str:
    if v is None:
        return '-'
    if isinstance(v, float) and v != v:
        return 'nan'
    return format(v, spec)


def goals(results: List[Dict]) -> List[Dict]:
    """The EAC speed goals, from the forward backbone (else model) rows:
    EAC at its largest budget >= 1.8x faster than ``sdpa_vit`` and
    ``win_vit`` at 1024 px and >= 4x faster than ``sdpa_vit`` at 2048 px;
    EAC's t(4096) / t(2048) <= 4.3."""
    out = []
    for scope in SCOPES:
        rows = [
            r for r in results if r['scope'] == scope
            and r['mode'] == 'forward' and 'latency_ms' in r
        ]
        eac = [r for r in rows if r['kind'] == 'eac']
        if not eac:
            continue
        top = max(r['budget'] for r in eac)
        t = {r['size']: r['latency_ms'] for r in eac if r['budget'] == top}
        peers = {(r['kind'], r['size']): r['latency_ms'] for r in rows}
        for kind, size, target in (('sdpa_vit', 1024, 1.8),
                                   ('win_vit', 1024, 1.8), ('sdpa_vit', 2048,
                                                            4.0)):
            if size in t and (kind, size) in peers:
                ratio = peers[(kind, size)] / t[size]
                out.append(
                    dict(
                        scope=scope,
                        goal=f'EAC C={top} vs {LABELS[kind]} at {size} px: '
                        f'speedup >= {target}',
                        value=ratio,
                        met=ratio >= target))
        if 4096 in t and 2048 in t:
            ratio = t[4096] / t[2048]
            out.append(
                dict(
                    scope=scope,
                    goal=f'EAC C={top}: t(4096) / t(2048) <= 4.3',
                    value=ratio,
                    met=ratio <= 4.3))
    return out


def markdown(report: Dict) -> str:
    env = report['environment']
    load = env.get('loadavg_start'), env.get('loadavg_end')
    lines = [
        '# Benchmark: EAC vs its dense twin and ViT peers', '',
        f"Date: {env.get('date', '-')}. Device: {env['device']} "
        f"({env['device_name']}, {env.get('cpu_count')} logical CPUs), "
        f"load average (1/5/15 min) at start {load[0]}, at end {load[1]}. "
        f"torch {env['torch']}, {env['threads']} threads, batch "
        f"{report['settings']['batch_size']}, fp32, " +
        ('one run per case (the profiled memory run, no warmup)'
         if report['settings'].get('single_run') else
         f"median of {report['settings']['repeats']} runs (at most "
         f"{report['settings'].get('max_seconds')} s of them) after "
         f"{report['settings']['warmup']} warmup") +
        f"{', malloc keeps freed blocks' if env.get('malloc_tuned') else ''}"
        '. Peak memory: tensor memory the step allocates on top of '
        'parameters and inputs.', ''
    ]
    kinds = [k for k in KINDS if k in report['settings']['models']]
    lines += [
        'Attention kernels: ' + '; '.join(f'{LABELS[k]}: {KERNELS[k]}'
                                          for k in kinds) + '.', ''
    ]
    if not report.get('complete', True):
        lines += [
            f"**Interrupted: {len(report['results'])} of "
            f"{report['planned_cases']} cases measured.**", ''
        ]
    res = report['results']
    for scope in SCOPES:
        for mode in MODES:
            rows = [
                r for r in res if r['scope'] == scope and r['mode'] == mode
            ]
            if not rows:
                continue
            what = 'forward' if mode == 'forward' else 'forward + backward'
            lines += [
                f'## {scope}, {what}', '',
                '| size | N | model | latency (ms) | img/s | peak mem (MiB) '
                '| backbone GFLOPs | speedup vs ViT (SDPA) | speedup vs '
                'windowed ViT | speedup vs mmseg ViT | speedup vs dense |',
                '|' + '---|' * 11
            ]

            def order(r):
                return r['size'], KINDS.index(r['kind']), r['budget'] or 0

            for r in sorted(rows, key=order):
                if 'skipped' in r:
                    lines.append(
                        f"| {r['size']} | {r['num_patches']} | {_label(r)} "
                        f"| skipped: {r['skipped']} | | | | | | | |")
                    continue
                lines.append(
                    f"| {r['size']} | {r['num_patches']} | {_label(r)} | "
                    f"{_fmt(r['latency_ms'])} | "
                    f"{_fmt(r['throughput_img_s'], '.3f')} | "
                    f"{_fmt(r.get('peak_mem_mb'))} | "
                    f"{_fmt(r['backbone_gflops_forward'], '.2f')} | "
                    f"{_fmt(r.get('speedup_vs_sdpa_vit'), '.2f')} | "
                    f"{_fmt(r.get('speedup_vs_win_vit'), '.2f')} | "
                    f"{_fmt(r.get('speedup_vs_vit'), '.2f')} | "
                    f"{_fmt(r.get('speedup_vs_dense'), '.2f')} |")
            lines.append('')
    if report.get('goals'):
        lines += [
            '## Goals', '', '| scope | goal | measured | met |',
            '|---|---|---|---|'
        ]
        for g in report['goals']:
            lines.append(f"| {g['scope']} | {g['goal']} | "
                         f"{_fmt(g['value'], '.2f')} | "
                         f"{'yes' if g['met'] else 'no'} |")
        lines.append('')
    if report['scaling']:
        lines += [
            '## How cost grows with resolution', '',
            'Least-squares exponent k of latency ~ N^k (N = patches) over '
            'the measured sizes; linear in N is k = 1, quadratic k = 2.', '',
            '| scope | mode | model | sizes | time exponent k | memory '
            'exponent |', '|---|---|---|---|---|---|'
        ]
        for s in report['scaling']:
            lines.append(f"| {s['scope']} | {s['mode']} | {s['model']} | "
                         f"{', '.join(map(str, s['sizes']))} | "
                         f"{_fmt(s['time_exponent'], '.2f')} | "
                         f"{_fmt(s['memory_exponent'], '.2f')} |")
        lines.append('')
    return '\n'.join(lines)


def plot(report: Dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    res = [r for r in report['results'] if 'latency_ms' in r]
    panels = [(s, m) for s in SCOPES for m in MODES
              if any(r['scope'] == s and r['mode'] == m for r in res)]
    panels = panels or [('backbone', 'forward')]
    fig, axes = plt.subplots(
        2, len(panels), figsize=(4.5 * len(panels), 7.5), squeeze=False)
    for col, (scope, mode) in enumerate(panels):
        rows = [r for r in res if r['scope'] == scope and r['mode'] == mode]
        labels = [
            _label(r) for r in sorted(
                rows, key=lambda r: (KINDS.index(r['kind']), r['budget'] or 0))
        ]
        labels = list(dict.fromkeys(labels))
        for row, (key, ylabel) in enumerate([('latency_ms', 'latency (ms)'),
                                             ('peak_mem_mb',
                                              'peak memory (MiB)')]):
            ax = axes[row][col]
            plotted = False
            for label in labels:
                pts = sorted((r['size'], r[key]) for r in rows
                             if _label(r) == label and r.get(key))
                if pts:
                    ax.plot(*zip(*pts), marker='o', label=label)
                    plotted = True
            ax.set_xscale('log', base=2)
            ax.set_yscale('log')
            sizes = sorted({r['size'] for r in rows})
            ax.set_xticks(sizes)
            ax.set_xticklabels([str(s) for s in sizes])
            ax.minorticks_off()
            ax.set_xlabel('image size (px)')
            ax.set_ylabel(ylabel)
            ax.set_title(f'{scope}, {mode}')
            ax.grid(True, which='both', alpha=0.3)
            if plotted:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _environment(device: torch.device, malloc_tuned: bool) -> Dict:
    import torch
    name = platform.processor() or platform.machine()
    if device.type == 'cuda':
        name = torch.cuda.get_device_name(device)
    else:
        try:
            with open('/proc/cpuinfo') as f:
                for line in f:
                    if line.startswith('model name'):
                        name = line.split(':', 1)[1].strip()
                        break
        except OSError:
            pass
    return dict(
        device=device.type,
        device_name=name,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        malloc_tuned=malloc_tuned,
        date=time.strftime('%Y-%m-%d %H:%M %Z'),
        loadavg_start=_loadavg())


def _loadavg() -> Optional[str]:
    """The 1 / 5 / 15 minute load averages (as ``uptime`` shows them)."""
    try:
        return '/'.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return None


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import torch

    import mmeac  # noqa: F401
    from mmeac.analysis import keep_freed_memory
    from mmeac.analysis.benchmark import resolve_device
    from mmeac.utils.fileio import refuse_existing, write_files
    from mmeac.utils.toolkit import ToolError, check_writable, error
    try:
        check_writable(args.out_dir, '--out-dir', is_dir=True)
        refuse_existing((osp.join(args.out_dir, name) for name in OUTPUTS),
                        args.overwrite)
        device = resolve_device(args.device)
        malloc_tuned = (not args.system_malloc and device.type == 'cpu'
                        and keep_freed_memory())
        if args.threads:
            torch.set_num_threads(args.threads)
        _register_peers()
        plan = Plan(args)
    except (ValueError, FileExistsError, ToolError) as err:
        return error('benchmark.py', err)
    results: List[Dict] = []
    planned = len(_cases(args, plan))
    env = _environment(device, malloc_tuned)
    try:  # `timeout` / a scheduler stopping the run: keep the results
        old_handler = signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:  # not in the main thread
        old_handler = None
    try:
        measure(args, plan, device, results)
    except KeyboardInterrupt:
        print(
            f'\ninterrupted: writing the {len(results)} of {planned} '
            'cases measured so far',
            file=sys.stderr)
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
    _speedups(results)
    env['loadavg_end'] = _loadavg()
    report = dict(
        environment=env,
        settings=dict(
            config=args.config,
            arch=plan.arch,
            max_cores=plan.max_cores,
            sizes=plan.sizes,
            budgets=plan.budgets,
            models=args.models,
            scopes=args.scopes,
            modes=args.modes,
            repeats=args.repeats,
            warmup=args.warmup,
            single_run=args.single_run,
            max_seconds=args.max_seconds,
            skip=args.skip,
            batch_size=args.batch_size,
            dtype='float32'),
        complete=len(results) == planned,
        planned_cases=planned,
        results=results,
        goals=goals(results),
        scaling=scaling(results))
    md = markdown(report)

    def write_text(text):

        def write(path):
            with open(path, 'w') as f:
                f.write(text)

        return write

    write_files(
        args.out_dir, {
            'benchmark.json': write_text(json.dumps(report, indent=2)),
            'benchmark.md': write_text(md),
            'benchmark.png': lambda path: plot(report, path),
        })
    print(md)
    print(f'wrote {", ".join(OUTPUTS)} to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
