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
import os.path as osp
import sys

from mmengine.config import DictAction

#: Values of ``--launcher`` (``none``: one process, no process group).
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


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
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmeac.utils import toolkit
    try:
        suffixes = toolkit.OUT_SUFFIXES
        if args.out is not None and not args.out.endswith(suffixes):
            raise toolkit.ToolError(f"--out '{args.out}' must end with one "
                                    f"of {', '.join(suffixes)}")
        cfg = toolkit.load_config(args.config, args.cfg_options)
        if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
            raise toolkit.ToolError(
                f"checkpoint '{args.checkpoint}' does not exist")
        toolkit.check_data_roots(cfg, ['test_dataloader'])
        cfg.work_dir = toolkit.default_work_dir(cfg, args.config,
                                                args.work_dir)
        toolkit.check_writable(cfg.work_dir, '--work-dir', is_dir=True)
        toolkit.check_writable(args.out, '--out', is_dir=False)
        toolkit.check_writable(args.show_dir, '--show-dir', is_dir=True)
        cfg.load_from = args.checkpoint
        if args.show_dir:
            toolkit.enable_visualization(cfg, args.show_dir)
        toolkit.import_mmeac()
        toolkit.check_eac_backbones(cfg)
        toolkit.check_checkpoint(
            cfg, args.config, args.checkpoint, partial=args.partial_load)
        toolkit.setup_launcher(cfg, args.launcher, args.local_rank)
    except toolkit.ToolError as e:
        toolkit.fail(sys.argv[0], str(e))

    from mmeac.errors import InputError, one_line
    created = toolkit.NewPaths(cfg.work_dir, args.show_dir)
    runner = None
    try:
        runner = toolkit.build_runner(cfg)
        toolkit.check_samples(runner, cfg, ['test_dataloader'])
        collector = None
        if args.out is not None and args.out.endswith(('.pkl', '.pickle')):
            collector = toolkit.build_prediction_collector()
            runner.test_evaluator.metrics.append(collector)
        metrics = runner.test()
    except InputError as e:
        created.remove(runner)
        toolkit.fail(sys.argv[0], one_line(e))

    if args.out is not None and runner.rank == 0:
        toolkit.write_test_results(args.out, metrics, collector)
        runner.logger.info(f'results written to {args.out}')
    toolkit.finish_distributed()


if __name__ == '__main__':
    main()
