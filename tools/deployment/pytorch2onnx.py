"""Export an mmeac model to ONNX (standard ops, runs in ONNX Runtime).

Segmentors and classifiers export their logits (``mode='tensor'``),
detectors their backbone + neck (the RPN / RoI heads and NMS stay in
PyTorch), ``--part backbone`` the EAC backbone alone. The graph takes the
normalised image batch ``[B, 3, H, W]`` (float32); the core budget is fixed
at export time; ``--dynamic`` leaves batch, height and width free.

Examples::

    python tools/deployment/pytorch2onnx.py \\
        configs/eac/upernet_eac-b_8xb2-160k_ade20k-512x512.py upernet.pth \\
        --out work_dirs/upernet_eac-b_c32.onnx --num-cores 32 --dynamic \\
        --verify
    python tools/deployment/pytorch2onnx.py CONFIG --part backbone \\
        --shape 1024 1024 --out eac-b.onnx --verify --benchmark 5

``--verify`` compares ONNX Runtime with PyTorch on a random input (max abs
error of every output; with ``--dynamic`` also at a second size) and fails
above ``--atol``; ``--benchmark N`` times both side by side on the CPU.
Bad input (missing files, a budget the model does not have, a shape
smaller than one patch) ends with one line and exit status 2, and nothing
is written.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mmeac.utils import cli

PROG = 'pytorch2onnx.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description='Export an mmeac model to ONNX.')
    parser.add_argument('config', help='config file (or pkg::path)')
    parser.add_argument(
        'checkpoint', nargs='?', default=None, help='checkpoint file')
    parser.add_argument('--out', required=True, help='the .onnx file')
    cli.add_overwrite(parser, 'the --out file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=None,
        metavar=('H', 'W'),
        help='input height and width (default: 512 512, or the config\'s '
        'crop size)')
    cli.add_num_cores(parser)
    parser.add_argument(
        '--dynamic',
        action='store_true',
        help='dynamic batch, height and width')
    parser.add_argument(
        '--part',
        choices=['auto', 'backbone'],
        default='auto',
        help='auto: segmentor / classifier logits, detector backbone + '
        'neck; backbone: the EAC backbone alone')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument(
        '--verify',
        action='store_true',
        help='compare ONNX Runtime with PyTorch')
    parser.add_argument('--atol', type=float, default=1e-4)
    parser.add_argument(
        '--benchmark',
        type=int,
        default=0,
        metavar='N',
        help='time N runs of ONNX Runtime and PyTorch side by side')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='CPU threads of both runtimes (default: torch\'s)')
    cli.add_cfg_options(parser)
    return parser.parse_args(argv)


def _default_shape(cfg) -> List[int]:
    size = cfg.get('crop_size', None) or cfg.get('image_size', None)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return [int(size[0]), int(size[1])]
    return [512, 512]


def _check(args) -> None:
    """Raise ``ValueError`` naming the first problem of the command line
    that needs no model."""
    if not args.out.endswith('.onnx'):
        raise ValueError(f'--out {args.out} must end with .onnx')
    if osp.isdir(args.out):
        raise ValueError(f'--out {args.out} is a folder')
    if osp.exists(args.out) and not args.overwrite:
        raise ValueError(
            f'--out {args.out} exists; pass --overwrite to replace it')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise ValueError(f'checkpoint {args.checkpoint} does not exist')
    if args.benchmark < 0:
        raise ValueError(f'--benchmark must be >= 0, got {args.benchmark}')


def _compare(wrapper, session, x) -> float:
    import numpy as np
    import torch

    from mmeac.apis.onnx_export import run_onnx
    with torch.no_grad():
        ref = wrapper(x)
    outs = run_onnx(session, x)
    if len(outs) != len(ref):
        raise RuntimeError(f'ONNX gave {len(outs)} outputs, PyTorch '
                           f'{len(ref)}')
    err = 0.0
    for r, o in zip(ref, outs):
        if tuple(r.shape) != tuple(o.shape):
            raise RuntimeError(f'output shape {o.shape} != PyTorch '
                               f'{tuple(r.shape)}')
        err = max(err, float(np.abs(r.numpy() - o).max()))
    return err


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import torch

    from mmeac.apis.inference import load_config
    from mmeac.apis.onnx_export import (build_export_model, export_onnx,
                                        onnx_session)
    from mmeac.utils.toolkit import error
    try:
        _check(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        cfg = load_config(args.config, args.cfg_options)
        wrapper, info = build_export_model(cfg, args.checkpoint, args.part,
                                           args.num_cores)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError) as err:
        return error(PROG, str(err).splitlines()[0] if str(err) else repr(err))
    shape = args.shape or _default_shape(cfg)
    patch = info['patch_size']
    if min(shape) < patch:
        return error(
            PROG, f'--shape {shape[0]} {shape[1]} is smaller than one '
            f'{patch}x{patch} patch')
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        return error(
            PROG, f'{err.name} is not installed: pip install -r '
            'requirements/onnx.txt')
    print(f'{PROG}: exporting {info["task"]} {info["part"]} at '
          f'{info["num_cores"]} cores, {shape[0]}x{shape[1]}'
          f'{" (dynamic batch/H/W)" if args.dynamic else ""} -> {args.out}')
    names = export_onnx(
        wrapper,
        args.out,
        shape,
        dynamic=args.dynamic,
        opset=args.opset,
        in_channels=info['in_channels'],
        min_size=patch)
    print(f'{PROG}: wrote {args.out} (outputs: {", ".join(names)})')
    if not (args.verify or args.benchmark):
        return 0
    session = onnx_session(args.out, torch.get_num_threads())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, info['in_channels'], *shape, generator=gen)
    if args.verify:
        sizes = [tuple(shape)]
        if args.dynamic:
            sizes.append((shape[0] + 2 * patch, max(shape[1] - patch, patch)))
        for size in sizes:
            xs = torch.randn(1, info['in_channels'], *size, generator=gen)
            err = _compare(wrapper, session, xs)
            ok = err <= args.atol
            print(f'{PROG}: verify {size[0]}x{size[1]}: max abs error '
                  f'{err:.3g} ({"ok" if ok else "FAILED"}, atol '
                  f'{args.atol})')
            if not ok:
                return 1
    if args.benchmark:
        from mmeac.analysis.benchmark import summarize_times, time_interleaved
        from mmeac.apis.onnx_export import run_onnx

        def torch_step():
            with torch.no_grad():
                wrapper(x)

        times = time_interleaved(
            dict(pytorch=torch_step, onnxruntime=lambda: run_onnx(session, x)),
            torch.device('cpu'),
            repeats=args.benchmark,
            warmup=1)
        med = {k: summarize_times(v)['median'] * 1e3 for k, v in times.items()}
        print(f'{PROG}: latency {shape[0]}x{shape[1]}, '
              f'{torch.get_num_threads()} threads, median of '
              f'{args.benchmark}: PyTorch {med["pytorch"]:.1f} ms, ONNX '
              f'Runtime {med["onnxruntime"]:.1f} ms (ratio ORT/PyTorch '
              f'{med["onnxruntime"] / med["pytorch"]:.2f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
