"""Evaluate a checkpoint with an mmseg, mmdet or mmpretrain config.

The config's ``default_scope`` decides which library builds the model, the
dataset and the metrics.

Examples::

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --out results.pkl --show-dir vis
    bash tools/dist_test.sh CONFIG CHECKPOINT 8

``--out FILE`` writes ``{'metrics': {...}}`` to a ``.json`` / ``.yaml`` file,
and ``{'metrics': {...}, 'predictions': [...]}`` to a ``.pkl`` file (one dict
per sample, ground truth and raw logits left out, instance masks as RLE).

``--show-dir DIR`` draws every test sample with the scope's visualisation
hook (``SegVisualizationHook``, ``DetVisualizationHook`` or mmpretrain's
``VisualizationHook``) and writes the images under ``DIR`` (relative to the
current directory).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Optional, Sequence

from mmengine.config import Config, DictAction

from mmeac.utils.toolkit import (LAUNCHERS, NewPaths, ToolError, build_runner,
                                 check_checkpoint, check_data_roots,
                                 check_eac_backbones, check_samples,
                                 check_writable, default_work_dir, fail,
                                 finish_distributed, import_mmeac, load_config,
                                 setup_launcher)

_OUT_SUFFIXES = ('.pkl', '.pickle', '.json', '.yaml', '.yml')
# Keys of a data sample that are inputs / ground truth or too large to dump.
_DROP_KEYS = ('gt_sem_seg', 'gt_instances', 'gt_panoptic_seg',
              'ignored_instances', 'gt_label', 'gt_score', 'seg_logits')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test a checkpoint (mmseg / mmdet / mmpretrain config).')
    parser.add_argument('config', help='config file path (or pkg::path)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='directory for the logs and the metric json '
        '(default: ./work_dirs/<config stem>)')
    parser.add_argument(
        '--out',
        help='dump the metrics (.json/.yaml) or the metrics and the '
        'per-sample predictions (.pkl) to this file')
    parser.add_argument(
        '--show-dir', help='write visualised predictions to this directory')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help='load only the tensors of CHECKPOINT that fit the model (by '
        'name and shape, a backbone-only file into its backbone) and list '
        'what was skipped; without it a checkpoint that does not fit the '
        'model exactly is an error')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value pairs')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_visualization(cfg: Config, show_dir: str) -> None:
    """Make the scope's visualisation hook draw every test sample.

    Raises:
        ToolError: If the config has no visualisation hook or its scope is
            not one of mmseg, mmdet, mmpretrain.
    """
    hooks = cfg.get('default_hooks', None) or {}
    hook = hooks.get('visualization', None)
    if hook is None:
        raise ToolError('--show-dir needs a `visualization` entry in the '
                        "config's default_hooks")
    scope = cfg.get('default_scope', None)
    show_dir = osp.abspath(show_dir)
    if scope == 'mmseg':  # SegVisualizationHook: images go to vis backends
        hook['draw'] = True
        hook['interval'] = 1
        cfg.visualizer['save_dir'] = show_dir
    elif scope == 'mmdet':  # DetVisualizationHook: test_out_dir
        hook['draw'] = True
        hook['interval'] = 1
        hook['test_out_dir'] = show_dir
    elif scope == 'mmpretrain':  # VisualizationHook: out_dir
        hook['enable'] = True
        hook['interval'] = 1
        hook['out_dir'] = show_dir
    else:
        raise ToolError(f"--show-dir does not support default_scope '{scope}'"
                        ' (mmseg, mmdet or mmpretrain)')


def _to_cpu_plain(sample: Dict[str, Any]) -> Dict[str, Any]:
    """Copy a prediction dict without ground truth, tensors on the CPU."""
    import torch
    out: Dict[str, Any] = {}
    for key, value in sample.items():
        if key in _DROP_KEYS:
            continue
        if isinstance(value, dict):
            value = _to_cpu_plain(value)
        elif isinstance(value, torch.Tensor):
            value = value.detach().cpu()
        out[key] = value
    inst = out.get('pred_instances', None)
    if isinstance(inst, dict) and isinstance(
            inst.get('masks', None), torch.Tensor):
        import numpy as np
        from pycocotools import mask as mask_utils
        masks = inst['masks'].numpy().astype(np.uint8)
        inst['masks'] = [
            mask_utils.encode(np.asfortranarray(m)) for m in masks
        ]
    return out


def build_prediction_collector():
    """A no-op metric that gathers the predictions of all ranks.

    After evaluation, rank 0 holds them in its ``predictions`` attribute.
    """
    from mmengine.evaluator import BaseMetric

    class CollectPredictions(BaseMetric):
        default_prefix: Optional[str] = 'predictions'

        def __init__(self) -> None:
            super().__init__(collect_device='cpu')
            self.predictions: List[Dict[str, Any]] = []

        def process(self, data_batch: Any,
                    data_samples: Sequence[dict]) -> None:
            self.results.extend(_to_cpu_plain(dict(s)) for s in data_samples)

        def compute_metrics(self, results: list) -> dict:
            self.predictions = list(results)
            return {}

    return CollectPredictions()


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        if args.out is not None and not args.out.endswith(_OUT_SUFFIXES):
            raise ToolError(f"--out '{args.out}' must end with one of "
                            f"{', '.join(_OUT_SUFFIXES)}")
        cfg = load_config(args.config, args.cfg_options)
        if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
            raise ToolError(f"checkpoint '{args.checkpoint}' does not exist")
        check_data_roots(cfg, ['test_dataloader'])
        cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)
        check_writable(cfg.work_dir, '--work-dir', is_dir=True)
        check_writable(args.out, '--out', is_dir=False)
        check_writable(args.show_dir, '--show-dir', is_dir=True)
        cfg.load_from = args.checkpoint
        if args.show_dir:
            enable_visualization(cfg, args.show_dir)
        import_mmeac()
        check_eac_backbones(cfg)
        check_checkpoint(
            cfg, args.config, args.checkpoint, partial=args.partial_load)
        setup_launcher(cfg, args.launcher)
    except ToolError as e:
        fail(sys.argv[0], str(e))

    from mmeac.errors import InputError, one_line
    created = NewPaths(cfg.work_dir, args.show_dir)
    runner = None
    try:
        runner = build_runner(cfg)
        check_samples(runner, cfg, ['test_dataloader'])
        collector = None
        if args.out is not None and args.out.endswith(('.pkl', '.pickle')):
            collector = build_prediction_collector()
            runner.test_evaluator.metrics.append(collector)
        metrics = runner.test()
    except InputError as e:
        created.remove(runner)
        fail(sys.argv[0], one_line(e))

    if args.out is not None and runner.rank == 0:
        import mmengine
        result: Dict[str, Any] = {'metrics': dict(metrics)}
        if collector is not None:
            result['predictions'] = collector.predictions
        out_dir = osp.dirname(osp.abspath(args.out))
        os.makedirs(out_dir, exist_ok=True)
        mmengine.dump(result, args.out)
        runner.logger.info(f'results written to {args.out}')
    finish_distributed()


if __name__ == '__main__':
    main()
