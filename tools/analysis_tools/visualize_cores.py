"""Visualise the cores of an EAC model: attention maps and coordinates.

For every budget in ``--budgets`` the image is run through the backbone of
the config's model (segmentor, detector or classifier: ``model.backbone``)
and, for every layer in ``--layers``, the core-to-patch attention is
recomputed from that layer's roped queries and keys (softmax over all keys,
patch columns weighted by the value norm ``||v_j||``, averaged over heads,
renormalised per core: :mod:`mmeac.analysis.attention_maps`).

Writes to ``--out-dir`` (K = ``--num-show-cores``):

* ``attention_C{budget}.png``: rows = layers, columns = cores ``0..K-1``;
  each map overlaid on the image, the core's RoPE coordinate marked (+),
  titles give the effective area of the map (``exp(entropy) / N``);
* ``trajectories_C{budget}.png``: the coordinates ``tanh(rho)`` of every
  core before each block, as lines over the image (``[-1, 1]^2``; o = first
  block, x = last);
* ``budgets_layer{layer}.png``: rows = budgets, columns = cores ``0..K-1``
  (present at every budget) at ``--compare-layer``: fewer cores should
  attend wider;
* ``summary.json``: mean effective area per budget and layer, coordinates.

Where one of them exists already the tool stops before computing the maps,
unless ``--overwrite``.

Example::

    python tools/analysis_tools/visualize_cores.py demo.jpg CONFIG CKPT \\
        --budgets 8 16 32 64 --layers all --out-dir work_dirs/cores
"""
from __future__ import annotations
import argparse
import functools
import json
import os.path as osp
import sys
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmeac.utils import cli

if TYPE_CHECKING:
    import torch

#: Size of one grid panel in inches (at ``DPI``): 160 x 160 pixels.
PANEL_INCH = 1.6
DPI = 100
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Core-to-patch attention maps and core trajectories of '
        'an EAC model.')
    parser.add_argument('image', help='image file')
    parser.add_argument(
        'config', help='config of a model with an EACViT '
        'backbone')
    parser.add_argument(
        'checkpoint', help='checkpoint of that model (or of '
        'its backbone)')
    parser.add_argument(
        '--budgets',
        type=int,
        nargs='+',
        default=None,
        help='core budgets (default 8 16 32 64 up to the '
        'model\'s max_cores)')
    parser.add_argument(
        '--layers',
        nargs='+',
        default=['all'],
        help="'all' (default) or block indices")
    parser.add_argument(
        '--img-size',
        type=int,
        nargs='+',
        default=None,
        help='resize the image to H [W] first (default: '
        'keep its size)')
    parser.add_argument(
        '--num-show-cores',
        type=int,
        default=8,
        help='cores shown per grid row (default 8)')
    parser.add_argument(
        '--compare-layer',
        type=int,
        default=-1,
        help='layer of the budget comparison (default last)')
    parser.add_argument('--out-dir', required=True)
    cli.add_overwrite(parser, 'the files in --out-dir')
    parser.add_argument('--device', default='cpu')
    cli.add_cfg_options(parser)
    return parser.parse_args(argv)


# ------------------------------------------------------------ model, image
def load_model(config: str,
               checkpoint: str,
               cfg_options=None,
               device: str = 'cpu'):
    """Build the config's model and load the checkpoint into it.

    Returns:
        tuple: (model, backbone, cfg).

    Raises:
        ValueError: No EAC backbone, or a checkpoint without its weights.
    """
    from mmeac.analysis.analysis_models import build_model, load_model_config
    from mmeac.analysis.attention_maps import find_backbone
    from mmeac.engine.checkpoint import (CheckpointError, describe_mismatch,
                                         match_state_dict, read_checkpoint,
                                         weights_of)
    try:
        state = weights_of(read_checkpoint(checkpoint), checkpoint)
    except CheckpointError as err:
        raise ValueError(str(err)) from None
    try:
        cfg = load_model_config(config, cfg_options)
    except SyntaxError as err:
        raise ValueError(f"config '{config}' has a syntax error (line "
                         f'{err.lineno}): {err.msg}') from None
    model_cfg = cfg.model.to_dict()
    backbone_cfg = model_cfg.get('backbone', model_cfg)
    backbone_cfg.pop('init_cfg', None)  # weights come from CHECKPOINT
    model_cfg.pop('pretrained', None)
    model = build_model(model_cfg)
    backbone = find_backbone(model)
    own = backbone.state_dict()
    if any(k.startswith('backbone.') for k in state):
        state = {
            k[len('backbone.'):]: v
            for k, v in state.items() if k.startswith('backbone.')
        }
    match = match_state_dict({
        k: tuple(v.shape)
        for k, v in own.items()
    }, state, ('', ))
    if match.missing or match.mismatched:
        # the backbone must load whole; other tensors of the file are unused
        match = match._replace(unexpected=[])
        raise ValueError(
            f"checkpoint '{checkpoint}' does not fit the EAC backbone of "
            f"config '{config}': {describe_mismatch(match)}")
    backbone.load_state_dict({k: state[k] for k in own}, strict=True)
    model.to(device).eval()
    return model, backbone, cfg


def preprocess_cfg(cfg) -> Dict:
    """mean / std / to_rgb of the config's data preprocessor."""
    pre = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    return dict(
        mean=list(pre.get('mean') or IMAGENET_MEAN),
        std=list(pre.get('std') or IMAGENET_STD),
        to_rgb=bool(pre.get('bgr_to_rgb', pre.get('to_rgb', True))))


def load_image(path: str,
               size: Optional[Sequence[int]],
               patch: int,
               pre: Dict,
               in_channels: int = 3) -> Tuple[np.ndarray, torch.Tensor]:
    """Read, resize, crop to whole patches and normalise.

    A model with one input channel gets the grayscale image.

    Returns:
        tuple: (RGB uint8 image [H, W, 3] for display, normalised input
        [1, in_channels, H, W]).
    """
    import mmcv
    import torch
    if not osp.isfile(path):
        raise ValueError(f'image {path} does not exist')
    bgr = mmcv.imread(path, channel_order='bgr')
    if bgr is None:
        raise ValueError(f'cannot read image {path}')
    if size:
        h, w = (size[0], size[0]) if len(size) == 1 else size[:2]
        bgr = mmcv.imresize(bgr, (w, h), interpolation='bilinear')
    h, w = (bgr.shape[0] // patch) * patch, (bgr.shape[1] // patch) * patch
    if h == 0 or w == 0:
        raise ValueError(f'image {path} ({bgr.shape[0]}x{bgr.shape[1]}) is '
                         f'smaller than one {patch}x{patch} patch')
    bgr = bgr[:h, :w]
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    if in_channels == 1:
        src = mmcv.bgr2gray(bgr, keepdim=True)
    elif in_channels == 3:
        src = rgb if pre['to_rgb'] else bgr
    else:
        raise ValueError(f'cannot feed an image to a model with '
                         f'{in_channels} input channels')
    mean = np.array(pre['mean'], np.float32)[:in_channels]
    std = np.array(pre['std'], np.float32)[:in_channels]
    x = (src.astype(np.float32) - mean) / std
    return rgb, torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()


# ----------------------------------------------------------------- figures
def effective_area(m: torch.Tensor) -> torch.Tensor:
    """``exp(entropy) / N`` of maps ``[..., h, w]`` (1 = uniform)."""
    p = m.flatten(-2).clamp_min(1e-12)
    ent = -(p * p.log()).sum(-1)
    return ent.exp() / p.shape[-1]


def _figure(rows: int, cols: int):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(cols * PANEL_INCH, rows * PANEL_INCH),
        squeeze=False)
    fig.subplots_adjust(
        left=0.01, right=0.99, bottom=0.01, top=0.93, wspace=0.04, hspace=0.2)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return plt, fig, axes


def _overlay(ax,
             rgb: np.ndarray,
             amap: torch.Tensor,
             coord=None,
             title: str = '') -> None:
    import torch
    h, w = rgb.shape[:2]
    up = torch.nn.functional.interpolate(
        amap[None, None].float(),
        size=(h, w),
        mode='bilinear',
        align_corners=False)[0, 0]
    up = (up / up.max().clamp_min(1e-12)).numpy()
    ax.imshow(rgb)
    ax.imshow(up, cmap='jet', alpha=0.5, vmin=0, vmax=1)
    if coord is not None:
        cx = (float(coord[0]) + 1) / 2 * w
        cy = (float(coord[1]) + 1) / 2 * h
        ax.plot([cx], [cy],
                marker='+',
                color='white',
                markersize=9,
                markeredgewidth=2)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_title(title, fontsize=7)


def _save(plt, fig, path: str) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _map_grid(rgb, rows: List[Tuple], num_show: int, title: str,
              path: str) -> None:
    """One row per ``(maps, coords, label)``: cores ``0..num_show-1``."""
    plt, fig, axes = _figure(len(rows), num_show)
    fig.suptitle(title, fontsize=9)
    for r, (maps, coords, label) in enumerate(rows):
        area = effective_area(maps)
        for j in range(num_show):
            _overlay(axes[r][j], rgb, maps[j], coords[j],
                     f'{label} core {j} ({100 * float(area[j]):.0f}%)')
    _save(plt, fig, path)


def attention_grid(rgb, result: Dict, num_show: int, path: str) -> None:
    rows = [(result['maps'][layer][0], result['coords'][0, layer], f'L{layer}')
            for layer in result['layers']]
    _map_grid(
        rgb, rows, min(num_show, result['num_cores']),
        f"core-to-patch attention, C={result['num_cores']} "
        '(weighted by ||v||; + = core position)', path)


def trajectory_plot(rgb, result: Dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    coords = result['coords'][0].numpy()  # [layers, C, 2]
    fig = plt.figure(figsize=(4 * PANEL_INCH, 4 * PANEL_INCH))
    ax = fig.add_axes([0.09, 0.06, 0.87, 0.88])
    ax.imshow(rgb, extent=(-1, 1, 1, -1), alpha=0.6)
    cmap = plt.get_cmap('hsv')
    c = coords.shape[1]
    for j in range(c):
        color = cmap(j / max(c, 1))
        ax.plot(coords[:, j, 0], coords[:, j, 1], '-', color=color, lw=1)
        ax.plot(coords[0, j, 0], coords[0, j, 1], 'o', color=color, ms=3)
        ax.plot(coords[-1, j, 0], coords[-1, j, 1], 'x', color=color, ms=5)
    ax.set_xlim(-1, 1)
    ax.set_ylim(1, -1)
    ax.set_title(
        f'core coordinates over depth, C={c} (o first block, '
        'x last)',
        fontsize=9)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def budget_grid(rgb, results: Dict[int, Dict], layer: int, num_show: int,
                path: str) -> None:
    budgets = sorted(results)
    rows = [(results[b]['maps'][layer][0], results[b]['coords'][0, layer],
             f'C={b}') for b in budgets]
    _map_grid(
        rgb, rows, min([num_show] + budgets),
        f'layer {layer}: the same cores at each budget '
        '(% = effective area)', path)


# -------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> List[str]:
    import mmeac  # noqa: F401
    from mmeac.analysis.attention_maps import (core_attention_maps,
                                               parse_layer_indices)
    from mmeac.utils.fileio import refuse_existing, write_files
    from mmeac.utils.toolkit import check_writable
    check_writable(args.out_dir, '--out-dir', is_dir=True)
    model, backbone, cfg = load_model(args.config, args.checkpoint,
                                      args.cfg_options, args.device)
    budgets = args.budgets or [
        b for b in (8, 16, 32, 64) if b in backbone.allowed_budgets
    ] or [backbone.max_cores]
    for b in budgets:
        if b not in backbone.allowed_budgets:
            raise ValueError(f'budget {b} is not one of this model\'s '
                             f'budgets {list(backbone.allowed_budgets)}')
    if args.num_show_cores < 1:
        raise ValueError('--num-show-cores must be >= 1')
    n_layers = len(backbone.layers)
    layers = 'all' if args.layers == ['all'] else [int(v) for v in args.layers]
    layer_ids = parse_layer_indices(layers, n_layers)
    compare = parse_layer_indices([args.compare_layer], n_layers)[0]
    wanted = sorted(set(layer_ids) | {compare})
    budgets = sorted(set(budgets))
    names = [
        f'{kind}_C{b}.png' for b in budgets
        for kind in ('attention', 'trajectories')
    ]
    names += [f'budgets_layer{compare}.png', 'summary.json']
    refuse_existing((osp.join(args.out_dir, n) for n in names), args.overwrite)
    rgb, x = load_image(args.image, args.img_size, backbone.patch_size,
                        preprocess_cfg(cfg),
                        backbone.patch_embed.proj.in_channels)
    x = x.to(args.device)
    results = {
        b: core_attention_maps(backbone, x, num_cores=b, layers=wanted)
        for b in budgets
    }
    summary = dict(
        image=args.image,
        input_shape=list(x.shape),
        budgets={
            str(b):
            dict(
                mean_effective_area={
                    str(layer):
                    float(effective_area(res['maps'][layer][0]).mean())
                    for layer in wanted
                },
                coords=res['coords'][0].tolist())
            for b, res in results.items()
        })
    writers = {}
    for b, res in results.items():
        writers[f'attention_C{b}.png'] = functools.partial(
            attention_grid, rgb, dict(res, layers=layer_ids),
            args.num_show_cores)
        writers[f'trajectories_C{b}.png'] = functools.partial(
            trajectory_plot, rgb, res)
    writers[f'budgets_layer{compare}.png'] = functools.partial(
        budget_grid, rgb, results, compare, args.num_show_cores)
    writers['summary.json'] = functools.partial(_write_json, summary)
    write_files(args.out_dir, writers)
    return list(writers)


def _write_json(obj, path: str) -> None:
    with open(path, 'w') as f:
        json.dump(obj, f, indent=1)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmeac.utils.toolkit import ToolError, error
    try:
        names = run(args)
    except (ValueError, FileExistsError, ToolError) as err:
        return error('visualize_cores.py', err)
    print(f'wrote {len(names)} files to {args.out_dir}: {", ".join(names)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
