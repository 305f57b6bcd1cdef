"""FLOPs of an EAC model, counted and analytic, next to its dense twin.

Counted: ``torch.utils.flop_counter.FlopCounterMode`` over one forward, with
formulas registered for the custom op ``mmeac::core_periphery_attention``
(and the CPU SDPA kernel), on the ``meta`` device by default (nothing is
computed, so any size is instant). Analytic: the closed form of
:mod:`mmeac.ops.flops` (attention ``4 D (2 N C + C^2)`` per layer, dense
``4 D (N + C)^2``). One multiply-add = 2 FLOPs; norms, activations, softmax
and RoPE rotations are not counted.

Examples::

    python tools/analysis_tools/get_flops.py b --shape 1024 1024 --num-cores 64
    python tools/analysis_tools/get_flops.py CONFIG --shape 512 512
    python tools/analysis_tools/get_flops.py CONFIG --backbone-only \\
        --json out.json
    python tools/analysis_tools/get_flops.py \\
        '{"embed_dims": 64, "num_layers": 2, "num_heads": 2,
          "mlp_ratio": 2.5}' --shape 64 64 --max-cores 16
"""
import argparse
import copy
import json
import os.path as osp
import sys
from typing import Dict, List, Optional

from mmeac.utils import cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='FLOPs of an EAC model (counted + analytic) next to the '
        'same network with dense attention.')
    parser.add_argument(
        'target',
        help='a config file (.py) or an EAC arch: s, s+, b, l or a JSON '
        'dict with embed_dims, num_layers, num_heads, mlp_ratio')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[1024, 1024],
        help='input size: H [W] (default 1024 1024)')
    cli.add_num_cores(parser)
    parser.add_argument(
        '--max-cores',
        type=int,
        default=64,
        help='core bank size when TARGET is an arch (default 64)')
    parser.add_argument(
        '--backbone-only',
        action='store_true',
        help='count the backbone only (always the case for an arch)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument(
        '--device',
        default='meta',
        choices=['meta', 'cpu', 'cuda'],
        help='device to count on; meta computes nothing (default)')
    cli.add_json(parser)
    cli.add_cfg_options(parser)
    return parser.parse_args(argv)


def _shape(values: List[int]):
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) <= 0:
        raise ValueError(f'--shape takes H [W] (positive ints), got {values}')
    return tuple(values)


def _is_eac(cfg: dict) -> bool:
    return str(cfg.get('type', '')).split('.')[-1] == 'EACViT'


def _build_pair(args, hw):
    """Return (name, model cfgs {eac, dense}, is_whole_model, scope)."""
    from mmeac.analysis.analysis_models import (eac_backbone_cfg,
                                                load_model_config,
                                                peer_backbone_cfg)
    if args.target.endswith('.py') or osp.isfile(args.target):
        if not osp.isfile(args.target):
            raise ValueError(f'config file {args.target} does not exist')
        cfg = load_model_config(args.target, args.cfg_options)
        model_cfg = cfg.model.to_dict() if hasattr(
            cfg.model, 'to_dict') else dict(cfg.model)
        backbone = model_cfg.get('backbone')
        if backbone is None or not _is_eac(backbone):
            raise ValueError(
                f'config {args.target}: model.backbone is not an EACViT '
                f'(got {None if backbone is None else backbone.get("type")})')
        backbone = copy.deepcopy(backbone)
        backbone.pop('init_cfg', None)  # never load weights to count
        model_cfg.pop('init_cfg', None)
        model_cfg.pop('pretrained', None)
        if args.num_cores is not None:
            backbone['num_cores'] = args.num_cores
        pair = {}
        for kind in ('eac', 'dense'):
            bb = peer_backbone_cfg(backbone, kind, hw)
            if args.backbone_only:
                pair[kind] = bb
            else:
                whole = copy.deepcopy(model_cfg)
                whole['backbone'] = bb
                whole.pop('data_preprocessor', None)
                pair[kind] = whole
        return osp.basename(args.target), pair, not args.backbone_only
    try:
        bb = eac_backbone_cfg(
            args.target, max_cores=args.max_cores, num_cores=args.num_cores)
    except ValueError as err:
        raise ValueError(f'TARGET is neither a config file nor an arch: '
                         f'{err}') from None
    return (f'EACViT-{args.target}', {
        'eac': bb,
        'dense': peer_backbone_cfg(bb, 'dense', hw)
    }, False)


def _count(model, inputs, whole: bool, device: str) -> Dict[str, int]:
    from mmeac.analysis.analysis_models import (make_data_samples,
                                                tensor_forward)
    from mmeac.ops.flops import count_module_flops
    samples = make_data_samples(model, inputs.shape[0], *inputs.shape[-2:])

    def run(m, x):
        return tensor_forward(m, x, samples) if whole else m(x)

    if device != 'meta':
        return count_module_flops(model, inputs, run, device=device)
    try:
        return count_module_flops(
            copy.deepcopy(model), inputs, run, device='meta')
    except (NotImplementedError, RuntimeError, ValueError, TypeError):
        # some ops (e.g. NMS in detectors) have no meta kernel: count on CPU
        return count_module_flops(model, inputs, run, device='cpu')


def compute(args: argparse.Namespace) -> Dict:
    """Build both networks, count and compute the formulas."""
    import torch

    import mmeac  # noqa: F401
    from mmeac.analysis.analysis_models import build_model
    from mmeac.ops.flops import (attention_pairs, counted_by_category,
                                 eac_backbone_flops)
    hw = _shape(args.shape)
    if args.batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {args.batch_size}')
    name, cfgs, whole = _build_pair(args, hw)
    result = dict(
        model=name,
        input=[args.batch_size, 3, *hw],
        unit='FLOPs (2 per '
        'multiply-add)',
        networks={})
    for kind, cfg in cfgs.items():
        model = build_model(cfg)
        model.eval()
        backbone = getattr(model, 'backbone', model)
        p = backbone.patch_size
        in_ch = backbone.patch_embed.proj.in_channels
        if hw[0] < p or hw[1] < p:
            raise ValueError(f'--shape {hw} is smaller than one {p}x{p} '
                             'patch')
        n = (hw[0] // p) * (hw[1] // p)
        c = backbone.num_cores
        inputs = torch.zeros(args.batch_size, in_ch, *hw)
        analytic = eac_backbone_flops(
            backbone.embed_dims,
            backbone.num_layers,
            backbone.mlp_ratio,
            n,
            c,
            patch_size=p,
            in_channels=in_ch,
            dense=(kind == 'dense'),
            batch_size=args.batch_size)
        counted_bb = _count(backbone, inputs, False, args.device)
        entry = dict(
            num_patches=n,
            num_cores=c,
            attention_pairs_per_layer=attention_pairs(n, c, kind == 'dense'),
            backbone_counted=counted_bb,
            backbone_counted_split=counted_by_category(counted_bb),
            backbone_analytic=analytic)
        if whole:
            entry['model_counted'] = _count(model, inputs, True, args.device)
        result['networks'][kind] = entry
    return result


def format_table(result: Dict) -> str:
    eac, dense = result['networks']['eac'], result['networks']['dense']
    g = 1e9

    def row(label, a, b):
        ratio = b / a if a else float('nan')
        return f'| {label} | {a / g:.3f} | {b / g:.3f} | {ratio:.2f}x |'

    n, c = eac['num_patches'], eac['num_cores']
    lines = [
        f"{result['model']}  input {'x'.join(map(str, result['input']))}  "
        f'N={n} patches  C={c} cores  (GFLOPs, 2 FLOPs per multiply-add)',
        '',
        f'| | EAC (C={c}) | dense twin | dense / EAC |',
        '|---|---:|---:|---:|',
        row('backbone, counted', eac['backbone_counted']['total'],
            dense['backbone_counted']['total']),
        row('backbone, analytic', eac['backbone_analytic']['total'],
            dense['backbone_analytic']['total']),
        row('  attention, analytic', eac['backbone_analytic']['attention'],
            dense['backbone_analytic']['attention']),
        row('  attention, counted', eac['backbone_counted_split']['attention'],
            dense['backbone_counted_split']['attention']),
        row('  linear layers + patch embed, analytic',
            eac['backbone_analytic']['linear'],
            dense['backbone_analytic']['linear']),
    ]
    if 'model_counted' in eac:
        lines.append(
            row('whole model, counted', eac['model_counted']['total'],
                dense['model_counted']['total']))
    lines += [
        '', f'attention pairs per layer: EAC 2NC + C^2 = '
        f"{eac['attention_pairs_per_layer']:,}; dense (N + C)^2 = "
        f"{dense['attention_pairs_per_layer']:,}"
    ]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmeac.utils.fileio import write_text_atomic
    from mmeac.utils.toolkit import error
    try:
        result = compute(args)
    except ValueError as err:
        return error('get_flops.py', err)
    print(format_table(result))
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2))
        print(f'\nwrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
