"""Evaluate one EAC checkpoint at several core budgets (elastic sweep).

The model is built and the checkpoint loaded once; for every budget K the
backbone is switched with ``model.backbone.num_cores = K`` and the whole test
set is evaluated with the config's test loop and metric. Per budget the tool
records every metric of the evaluator (mIoU for mmseg configs), the latency
of one ``test_step`` per image (preprocessing + forward + postprocessing,
data loading and metric excluded; the first ``--warmup`` steps of each budget
are not timed) and the peak tensor memory a test step adds, measured on the
warm-up steps with :func:`mmeac.analysis.peak_memory_bytes` (the CUDA
allocator's ``max_memory_allocated`` on a GPU, the CPU allocator's traced
allocations on the CPU).

Outputs in ``--out-dir`` (default: the work dir)::

    budgets.json  # {'config', 'checkpoint', 'device', ..., 'results': [...]}
    budgets.md    # markdown table, one row per budget
    budgets.png   # metric, latency and memory against the budget

Where one of them exists already the tool stops before evaluating, unless
``--overwrite``.

Examples::

    python tools/analysis_tools/eval_budgets.py CONFIG CHECKPOINT
    python tools/analysis_tools/eval_budgets.py CONFIG CHECKPOINT \\
        --budgets 8 16 32 64 --out-dir work_dirs/sweep
"""
import argparse
import json
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

from mmeac.utils import cli

#: The files written to ``--out-dir``.
OUTPUTS = ('budgets.json', 'budgets.md', 'budgets.png')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Evaluate one EAC checkpoint at several core budgets.')
    parser.add_argument('config', help='config file path (or pkg::path)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--budgets',
        type=int,
        nargs='+',
        help="core budgets to evaluate (default: all of the model's "
        'budgets, e.g. 8 16 ... 64)')
    parser.add_argument(
        '--out-dir',
        help='where budgets.json/.md/.png go (default: '
        'the work dir)')
    cli.add_overwrite(parser, 'budgets.json/.md/.png')
    parser.add_argument(
        '--work-dir',
        help='logs (default: ./work_dirs/eval_budgets/<config stem>)')
    parser.add_argument(
        '--metric',
        help='metric to plot (default: mIoU when present, else the first)')
    parser.add_argument(
        '--warmup',
        type=int,
        default=1,
        help='untimed test steps at the start of each budget, on which the '
        'peak memory is measured (default 1)')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help='load only the tensors of CHECKPOINT that fit the model and '
        'list what was skipped (default: a checkpoint that does not fit '
        'exactly is an error)')
    cli.add_cfg_options(parser)
    return parser.parse_args(argv)


class StepMeter:
    """Wrap ``model.test_step``: per-image latency and peak memory.

    The first ``warmup`` steps of a budget are not timed; the peak memory is
    measured on them with :func:`mmeac.analysis.peak_memory_bytes` (CUDA
    allocator peak, or the running sum of the CPU allocator's allocations
    traced by ``torch.profiler``), so that the profiler never slows a timed
    step.
    """

    def __init__(self, model, device) -> None:
        self.model = model
        self.device = device
        self.times: List[float] = []
        self.images: List[int] = []
        self.peak_bytes = 0
        self.skip = 0
        self._orig: Callable = model.test_step
        model.test_step = self._step

    def reset(self, warmup: int) -> None:
        self.times, self.images, self.peak_bytes = [], [], 0
        self.skip = warmup

    def _step(self, data):
        from mmeac.analysis import peak_memory_bytes, synchronize
        if self.skip > 0:
            self.skip -= 1
            out = []
            peak = peak_memory_bytes(lambda: out.append(self._orig(data)),
                                     self.device)
            self.peak_bytes = max(self.peak_bytes, peak)
            return out[0]
        synchronize(self.device)
        t0 = time.perf_counter()
        out = self._orig(data)
        synchronize(self.device)
        self.times.append(time.perf_counter() - t0)
        inputs = data.get('inputs') if isinstance(data, dict) else None
        self.images.append(len(inputs) if inputs is not None else 1)
        return out

    def restore(self) -> None:
        self.model.test_step = self._orig


def _pick_metric(metrics: Dict[str, float], wanted: Optional[str]) -> str:
    from mmeac.utils.toolkit import ToolError
    if wanted is not None:
        if wanted not in metrics:
            raise ToolError(f"metric '{wanted}' is not among the evaluator's "
                            f'metrics {sorted(metrics)}')
        return wanted
    if 'mIoU' in metrics:
        return 'mIoU'
    return sorted(metrics)[0]


def write_table(path: str, results: Sequence[dict], metric: str) -> None:
    """Write the markdown table of a sweep."""
    lines = [
        f'| budget (cores) | {metric} | latency (ms/img) | '
        'peak memory (MiB) |', '|---:|---:|---:|---:|'
    ]
    for r in results:
        lat = ('n/a' if r['latency_ms'] is None else f"{r['latency_ms']:.1f}")
        lines.append(f"| {r['budget']} | {r['metrics'][metric]:.2f} | {lat} "
                     f"| {r['peak_memory_mb']:.1f} |")
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')


def write_plot(path: str, results: Sequence[dict], metric: str,
               memory_label: str) -> None:
    """Write the PNG plot of a sweep (matplotlib, Agg backend)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    budgets = [r['budget'] for r in results]
    series = [
        ([r['metrics'][metric] for r in results], metric, 'tab:blue'),
        ([r['latency_ms'] or 0.0
          for r in results], 'latency (ms / image)', 'tab:orange'),
        ([r['peak_memory_mb'] for r in results], memory_label, 'tab:green'),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (ys, label, color) in zip(axes, series):
        ax.plot(budgets, ys, marker='o', color=color)
        ax.set_xlabel('core budget C')
        ax.set_ylabel(label)
        ax.set_xticks(budgets)
        ax.grid(alpha=0.3)
    fig.suptitle('EAC elastic evaluation: one checkpoint, every budget')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _backbone(model):
    from mmeac.utils.toolkit import ToolError
    model = getattr(model, 'module', model)
    backbone = getattr(model, 'backbone', None)
    if backbone is None or not hasattr(backbone, 'allowed_budgets'):
        raise ToolError(
            f'the model ({type(model).__name__}) has no elastic backbone '
            '(model.backbone.num_cores / allowed_budgets, e.g. EACViT)')
    return backbone


def sweep(args: argparse.Namespace) -> dict:
    """Run the sweep; return the JSON-able summary (files not written)."""
    import torch

    from mmeac.utils.fileio import refuse_existing
    from mmeac.utils.toolkit import (ToolError, build_runner, check_checkpoint,
                                     check_data_roots, check_samples,
                                     check_writable, default_work_dir,
                                     import_mmeac, load_config)
    cfg = load_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
        raise ToolError(f"checkpoint '{args.checkpoint}' does not exist")
    if args.warmup < 1:
        raise ToolError(f'--warmup must be >= 1 (the peak memory is measured '
                        f'on the warm-up steps), got {args.warmup}')
    check_data_roots(cfg, ['test_dataloader'])
    stem = osp.splitext(osp.basename(args.config.split('::')[-1]))[0]
    cfg.work_dir = default_work_dir(
        cfg, args.config, args.work_dir
        or osp.join('work_dirs', 'eval_budgets', stem))
    check_writable(cfg.work_dir, '--work-dir', is_dir=True)
    check_writable(args.out_dir, '--out-dir', is_dir=True)
    try:
        refuse_existing((osp.join(args.out_dir or cfg.work_dir, name)
                         for name in OUTPUTS), args.overwrite)
    except FileExistsError as e:
        raise ToolError(str(e)) from None
    import_mmeac()
    check_checkpoint(
        cfg, args.config, args.checkpoint, partial=args.partial_load)
    cfg.load_from = args.checkpoint
    cfg.launcher = 'none'
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'val_dataloader', 'val_cfg', 'val_evaluator'):
        cfg[key] = None
    cfg.param_scheduler = None

    runner = build_runner(cfg)
    check_samples(runner, cfg, ['test_dataloader'])
    backbone = _backbone(runner.model)
    budgets = list(args.budgets or backbone.allowed_budgets)
    for b in budgets:
        try:
            backbone._check_budget(b, 'budget')
        except ValueError as e:
            raise ToolError(str(e)) from None
    default_budget = backbone.num_cores

    device = next(runner.model.parameters()).device
    runner._test_loop = runner.build_test_loop(runner._test_loop)
    runner.call_hook('before_run')
    runner.load_or_resume()
    meter = StepMeter(runner.model, device)
    results = []
    try:
        for b in budgets:
            backbone.num_cores = b
            meter.reset(args.warmup)
            metrics = runner.test_loop.run()
            if backbone.last_num_cores != b:
                raise RuntimeError(f'budget {b} was asked for but the '
                                   f'backbone ran {backbone.last_num_cores}')
            n_img = sum(meter.images)
            lat = (1e3 * sum(meter.times) / n_img) if n_img else None
            results.append(
                dict(
                    budget=b,
                    metrics={
                        k: float(v)
                        for k, v in metrics.items()
                    },
                    latency_ms=lat,
                    timed_images=n_img,
                    peak_memory_mb=meter.peak_bytes / 2**20))
            runner.logger.info(
                f'budget {b}: {metrics}, latency '
                f"{'n/a' if lat is None else f'{lat:.1f}'} ms/img, peak "
                f'memory {meter.peak_bytes / 2**20:.1f} MiB')
    finally:
        meter.restore()
        backbone.num_cores = default_budget
        runner.call_hook('after_run')
    metric = _pick_metric(results[0]['metrics'], args.metric)
    cuda = device.type == 'cuda'
    device_name = (
        torch.cuda.get_device_name(device)
        if cuda else f'cpu ({torch.get_num_threads()} threads)')
    return dict(
        config=args.config,
        checkpoint=args.checkpoint,
        device=device_name,
        metric=metric,
        memory_measure=('peak CUDA memory a test step adds (max_memory_'
                        'allocated)' if cuda else 'peak CPU tensor memory a '
                        'test step adds (torch.profiler allocations)'),
        latency_measure='test_step per image (preprocess + forward + '
        f'postprocess), first {args.warmup} step(s) per budget untimed',
        results=results,
        work_dir=cfg.work_dir)


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmeac.errors import InputError, one_line
    from mmeac.utils.fileio import write_files
    from mmeac.utils.toolkit import ToolError, fail
    try:
        summary = sweep(args)
    except ToolError as e:
        fail(sys.argv[0], str(e))
        return
    except InputError as e:  # a bad sample, found while evaluating
        fail(sys.argv[0], one_line(e))
        return
    out_dir = args.out_dir or summary['work_dir']
    results, metric = summary['results'], summary['metric']
    mem_label = ('peak CUDA memory (MiB)' if 'CUDA'
                 in summary['memory_measure'] else 'peak CPU tensor memory '
                 '(MiB)')

    def write_json(path):
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(summary, f, indent=2)

    write_files(
        out_dir, {
            'budgets.json':
            write_json,
            'budgets.md':
            lambda path: write_table(path, results, metric),
            'budgets.png':
            lambda path: write_plot(path, results, metric, mem_label),
        })
    with open(osp.join(out_dir, 'budgets.md'), encoding='utf-8') as f:
        print(f.read(), end='')
    print(f'written: {osp.join(out_dir, "budgets.{json,md,png}")}')


if __name__ == '__main__':
    main()
