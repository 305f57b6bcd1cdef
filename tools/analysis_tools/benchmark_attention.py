"""Attention benchmark of the EAC backbone (a benchmark, not a test).

Three comparisons, each side by side in one run (batch 1, fp32, median of
``--repeats`` runs after ``--warmup``, ``torch.no_grad`` for forward-only,
torch's default thread count unless ``--threads``). The two sides of a
comparison are timed round-robin (one run of each per round, the starting
side alternating), so drifts of a shared machine fall on both alike:

1. ``backbone``: EAC (budget ``--num-cores``, default 64) against the same
   network with dense attention over all tokens, forward, at ``--sizes``
   (default 512 1024 2048). Targets for EAC-B: >= 1.8x faster at 1024 and
   >= 4.2x at 2048 (the analytic FLOP ratios are printed next to them).
2. ``op``: the custom op ``torch.ops.mmeac.core_periphery_attention``
   against the authors' formulation (:func:`sdpa_pair_attention`: two
   ``scaled_dot_product_attention`` calls and a concatenation), at the
   attention shapes of the backbone at ``--op-sizes`` (default 1024 2048),
   forward and forward + backward. Target: no slower (ratio >= 1). The op
   is also timed on its plain path (its CPU kernels disabled, see
   ``docs/op_paths.md``).
3. ``linear``: the backbone forward at ``--linear-size`` (default 1024)
   against its linear layers alone: the same matmuls (qkv, proj, fc1, fc2
   of every block over all C + N tokens, with the model's weights, on
   preallocated contiguous inputs) and the patch-embedding convolution.
   Target: within 1.10x.

Dense attention at 2048 px is slow on a small CPU: ``--max-seconds`` stops
repeating a case once its timed runs took that long (one run is always
timed).

Examples::

    python tools/analysis_tools/benchmark_attention.py \\
        --json work_dirs/attn.json
    python tools/analysis_tools/benchmark_attention.py --sizes 512 1024 \\
        --op-sizes 1024 --sections backbone op
"""
from __future__ import annotations
import argparse
import functools
import json
import sys
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from mmeac.utils import cli

if TYPE_CHECKING:
    import torch

SECTIONS = ('backbone', 'op', 'linear')
TARGETS = {
    'backbone': {
        1024: 1.8,
        2048: 4.2
    },
    'op': 1.0,
    'linear': 1.10,
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='EAC attention benchmark: vs dense twin, op vs two '
        'SDPA calls, whole forward vs its linear layers.')
    parser.add_argument(
        '--arch',
        default='b',
        help='EAC arch: s, s+, b, l or a JSON dict (default b)')
    parser.add_argument('--max-cores', type=int, default=64)
    parser.add_argument(
        '--num-cores', type=int, default=64, help='budget C (default 64)')
    parser.add_argument(
        '--sizes',
        type=int,
        nargs='+',
        default=[512, 1024, 2048],
        help='sizes of the backbone comparison')
    parser.add_argument(
        '--op-sizes',
        type=int,
        nargs='+',
        default=[1024, 2048],
        help='sizes whose attention shapes the op is timed at')
    parser.add_argument('--linear-size', type=int, default=1024)
    parser.add_argument(
        '--sections', nargs='+', default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument(
        '--op-repeats',
        type=int,
        default=40,
        help='rounds of the op comparison (milliseconds each; default 40)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument(
        '--max-seconds',
        type=float,
        default=120.0,
        help='stop repeating a case after this many timed '
        'seconds (default 120)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument(
        '--system-malloc',
        action='store_true',
        help='leave glibc malloc as it is (default: keep large freed '
        'blocks for reuse, see mmeac.analysis.cpu_malloc)')
    parser.add_argument('--seed', type=int, default=0)
    cli.add_json(parser)
    return parser.parse_args(argv)


def _side_by_side(fns: Dict[str, Callable[[], object]], args) -> Dict:
    """Time ``fns`` round-robin (see ``time_interleaved``); name ->
    ``dict(median_ms, runs_ms)``."""
    import torch

    from mmeac.analysis.benchmark import summarize_times, time_interleaved
    times = time_interleaved(fns, torch.device('cpu'), args.repeats,
                             args.warmup, args.max_seconds)
    return {
        name:
        dict(
            median_ms=summarize_times(t)['median'] * 1e3,
            runs_ms=[x * 1e3 for x in t])
        for name, t in times.items()
    }


def _backbone(args, dense: bool):
    import torch

    from mmeac.analysis.analysis_models import build_model, eac_backbone_cfg
    torch.manual_seed(args.seed)
    model = build_model(
        eac_backbone_cfg(
            args.arch,
            max_cores=args.max_cores,
            num_cores=args.num_cores,
            dense=dense))
    return model.eval()


def _image(size: int, seed: int) -> torch.Tensor:
    import torch
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, size, size, generator=gen)


def bench_backbone(args, eac, dense) -> List[Dict]:
    import torch

    from mmeac.ops.flops import eac_backbone_flops
    rows = []
    for size in args.sizes:
        x = _image(size, args.seed)
        n = (size // eac.patch_size)**2
        out = dict(size=size, num_patches=n, num_cores=args.num_cores)
        with torch.no_grad():
            out.update(
                _side_by_side(
                    dict(eac=lambda: eac(x), dense=lambda: dense(x)), args))
        flops = [
            eac_backbone_flops(
                eac.embed_dims,
                eac.num_layers,
                eac.mlp_ratio,
                n,
                args.num_cores,
                eac.patch_size,
                dense=d)['total'] for d in (False, True)
        ]
        out['speedup'] = out['dense']['median_ms'] / out['eac']['median_ms']
        out['flop_ratio'] = flops[1] / flops[0]
        out['target'] = TARGETS['backbone'].get(size)
        rows.append(out)
    return rows


def _merged(fn: Callable) -> Callable:
    """``fn`` followed by merging the heads into ``[B, L, heads * d]``, the
    input of the output projection (what the attention layer needs)."""

    def run(q, k, v, c):
        return fn(q, k, v, c).transpose(1, 2).flatten(2)

    return run


def sdpa_pair_attention(q: torch.Tensor,
                        k: torch.Tensor,
                        v: torch.Tensor,
                        num_cores: int,
                        scale: Optional[float] = None) -> torch.Tensor:
    """The authors' formulation, the op's baseline: two SDPA calls and a
    concatenation (differentiated by autograd through SDPA)."""
    import torch
    import torch.nn.functional as F
    c = num_cores
    core = F.scaled_dot_product_attention(q[:, :, :c], k, v, scale=scale)
    patch = F.scaled_dot_product_attention(
        q[:, :, c:], k[:, :, :c], v[:, :, :c], scale=scale)
    return torch.cat([core, patch], dim=2)


def _on_plain_path(fn: Callable) -> Callable:
    """``fn`` with the op on its plain path (its CPU kernels disabled)."""
    from mmeac.ops.core_periphery_attention import plain_path

    def run(*args, **kwargs):
        with plain_path():
            return fn(*args, **kwargs)

    return run


# op variants: name suffix -> report label
OP_STEPS = (('', 'attention'), ('_merged', '+ merge heads'),
            ('_plain', 'attention, op on its plain path'))


def bench_op(args, eac) -> List[Dict]:
    import torch

    from mmeac.ops import core_periphery_attention
    args = argparse.Namespace(**{**vars(args), 'repeats': args.op_repeats})
    heads, c = eac.num_heads, args.num_cores
    d = eac.embed_dims // heads
    impls = dict(
        op=core_periphery_attention,
        sdpa_pair=sdpa_pair_attention,
        op_merged=_merged(core_periphery_attention),
        sdpa_pair_merged=_merged(sdpa_pair_attention),
        op_plain=_on_plain_path(core_periphery_attention))
    rows = []
    for size in args.op_sizes:
        n = (size // eac.patch_size)**2
        gen = torch.Generator().manual_seed(args.seed)
        q, k, v = (
            torch.randn(1, heads, c + n, d, generator=gen) for _ in range(3))
        g = torch.randn(1, c + n, heads * d, generator=gen)
        out = dict(size=size, shape=[1, heads, c + n, d], num_cores=c)
        with torch.no_grad():
            res = _side_by_side(
                {
                    name: functools.partial(fn, q, k, v, c)
                    for name, fn in impls.items()
                }, args)
        out.update({f'{name}_forward': r for name, r in res.items()})
        qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))

        def step(fn):
            for t in (qg, kg, vg):
                t.grad = None
            y = fn(qg, kg, vg, c)
            y.backward(
                g.view(y.shape) if y.dim() ==
                3 else g.view(1, c + n, heads, d).transpose(1, 2))

        res = _side_by_side(
            {
                name: functools.partial(step, fn)
                for name, fn in impls.items()
            }, args)
        out.update({f'{name}_train': r for name, r in res.items()})
        for mode in ('forward', 'train'):
            for suffix, _ in OP_STEPS:
                pair = ('sdpa_pair_merged'
                        if suffix == '_merged' else 'sdpa_pair')
                out[f'ratio_{mode}{suffix}'] = (
                    out[f'{pair}_{mode}']['median_ms'] /
                    out[f'op{suffix}_{mode}']['median_ms'])
        out['target'] = TARGETS['op']
        rows.append(out)
    return rows


def linear_only_fn(backbone,
                   size: int,
                   seed: int,
                   bias: bool = True) -> Callable[[], None]:
    """The backbone's linear layers alone: patch conv + qkv/proj/fc1/fc2 per
    block over all C + N tokens, on preallocated contiguous inputs; with
    ``bias=False`` their matmuls without the bias adds."""
    import torch
    p = backbone.patch_size
    n = (size // p)**2
    tokens = n + backbone.num_cores
    gen = torch.Generator().manual_seed(seed)
    img = _image(size, seed)
    x = torch.randn(1, tokens, backbone.embed_dims, generator=gen)
    hidden = backbone.layers[0].ffn.fc2.in_features
    h = torch.randn(1, tokens, hidden, generator=gen)

    def linear(layer: torch.nn.Linear, inp: torch.Tensor) -> None:
        if bias:
            layer(inp)
        else:
            torch.nn.functional.linear(inp, layer.weight)

    def run():
        backbone.patch_embed.proj(img)
        for layer in backbone.layers:
            linear(layer.attn.qkv, x)
            linear(layer.attn.proj, x)
            linear(layer.ffn.fc1, x)
            linear(layer.ffn.fc2, h)

    return run


def bench_linear(args, eac) -> Dict:
    import torch
    size = args.linear_size
    x = _image(size, args.seed)
    with torch.no_grad():
        res = _side_by_side(
            dict(
                backbone=lambda: eac(x),
                backbone_plain=_on_plain_path(lambda: eac(x)),
                linear_only=linear_only_fn(eac, size, args.seed),
                matmuls_only=linear_only_fn(eac, size, args.seed, bias=False)),
            args)
    base = res['linear_only']['median_ms']
    return dict(
        size=size,
        num_cores=args.num_cores,
        **res,
        ratio=res['backbone']['median_ms'] / base,
        ratio_plain=res['backbone_plain']['median_ms'] / base,
        ratio_matmuls=res['backbone']['median_ms'] /
        res['matmuls_only']['median_ms'],
        target=TARGETS['linear'])


def format_report(res: Dict) -> str:
    lines = [
        f"EAC attention benchmark: arch {res['arch']}, C="
        f"{res['num_cores']}, batch 1, fp32, {res['threads']} threads, "
        f"median of {res['repeats']} runs"
        f"{', malloc keeps freed blocks' if res['malloc_tuned'] else ''}"
        f", compiled kernel: "
        f"{'yes' if res.get('compiled_kernel') else 'no (not built)'}", ''
    ]
    if 'backbone' in res:
        lines += [
            '| size | N | EAC fwd (ms) | dense fwd (ms) | speedup | '
            'FLOP ratio | target |', '|---|---|---|---|---|---|---|'
        ]
        for r in res['backbone']:
            tgt = f">= {r['target']}x" if r['target'] else '-'
            lines.append(
                f"| {r['size']} | {r['num_patches']} | "
                f"{r['eac']['median_ms']:.1f} | {r['dense']['median_ms']:.1f}"
                f" | {r['speedup']:.2f}x | {r['flop_ratio']:.2f}x | {tgt} |")
        lines.append('')
    if 'op' in res:
        lines += [
            '| size | q/k/v shape | step | op fwd (ms) | 2xSDPA+cat fwd (ms) '
            '| ratio | op fwd+bwd (ms) | 2xSDPA+cat fwd+bwd (ms) | '
            'ratio |', '|---|---|---|---|---|---|---|---|---|'
        ]
        for r in res['op']:
            for suffix, step in OP_STEPS:
                pair = ('sdpa_pair_merged'
                        if suffix == '_merged' else 'sdpa_pair')
                lines.append(
                    f"| {r['size']} | {'x'.join(map(str, r['shape']))} | "
                    f'{step} | '
                    f"{r[f'op{suffix}_forward']['median_ms']:.2f} | "
                    f"{r[f'{pair}_forward']['median_ms']:.2f} | "
                    f"{r[f'ratio_forward{suffix}']:.2f}x | "
                    f"{r[f'op{suffix}_train']['median_ms']:.2f} | "
                    f"{r[f'{pair}_train']['median_ms']:.2f} | "
                    f"{r[f'ratio_train{suffix}']:.2f}x |")
        lines += [
            '(ratio = two-SDPA time / op time; target >= 1.00x. "+ merge '
            'heads" includes reshaping the output to [B, L, heads * d] for '
            'the output projection, as the attention layer does. "plain '
            'path": the op with its CPU kernels disabled.)', ''
        ]
    if 'linear' in res:
        r = res['linear']
        lines += [
            '| size | EAC fwd (ms) | linear layers + patch conv (ms) | '
            'ratio | target | EAC fwd, op on plain path (ms) | ratio | '
            'matmuls without bias (ms) | EAC / matmuls |',
            '|---|---|---|---|---|---|---|---|---|',
            f"| {r['size']} | {r['backbone']['median_ms']:.1f} | "
            f"{r['linear_only']['median_ms']:.1f} | {r['ratio']:.3f}x | "
            f"<= {r['target']:.2f}x | "
            f"{r['backbone_plain']['median_ms']:.1f} | "
            f"{r['ratio_plain']:.3f}x | "
            f"{r['matmuls_only']['median_ms']:.1f} | "
            f"{r['ratio_matmuls']:.3f}x |", ''
        ]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import torch

    import mmeac  # noqa: F401
    from mmeac.analysis import keep_freed_memory
    from mmeac.analysis.analysis_models import model_arch
    from mmeac.ops import HAS_COMPILED_KERNEL
    from mmeac.utils.fileio import write_text_atomic
    from mmeac.utils.toolkit import error
    malloc_tuned = not args.system_malloc and keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if min(args.repeats, args.op_repeats) < 1 or args.warmup < 0:
            raise ValueError('--repeats and --op-repeats must be >= 1 and '
                             '--warmup >= 0')
        sizes = args.sizes + args.op_sizes + [args.linear_size]
        if min(sizes) < 16:
            raise ValueError(f'sizes must be >= one 16 px patch, got {sizes}')
        eac = _backbone(args, dense=False)  # validates arch and budget
    except ValueError as err:
        return error('benchmark_attention.py', err)
    res = dict(
        arch=model_arch(args.arch),
        num_cores=args.num_cores,
        threads=torch.get_num_threads(),
        malloc_tuned=malloc_tuned,
        compiled_kernel=HAS_COMPILED_KERNEL,
        repeats=args.repeats,
        warmup=args.warmup,
        torch=torch.__version__)
    if 'backbone' in args.sections:
        dense = _backbone(args, dense=True)
        dense.load_state_dict(eac.state_dict())
        res['backbone'] = bench_backbone(args, eac, dense)
        del dense
    if 'op' in args.sections:
        res['op'] = bench_op(args, eac)
    if 'linear' in args.sections:
        res['linear'] = bench_linear(args, eac)
    print(format_report(res))
    if args.json:
        write_text_atomic(args.json, json.dumps(res, indent=2))
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
