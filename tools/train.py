"""Train a model from an mmseg, mmdet or mmpretrain config.

The config's ``default_scope`` decides which library builds the model, the
datasets and the metrics; ``import mmeac`` (via :mod:`mmeac.utils.toolkit`,
once the command line is parsed) applies the compatibility fixes and
registers the mmeac modules first.

Examples::

    python tools/train.py configs/eac/xxx.py
    python tools/train.py CONFIG --work-dir work_dirs/run1 --amp
    python tools/train.py CONFIG --resume                 # latest in work dir
    python tools/train.py CONFIG --resume work_dirs/run1/iter_2000.pth
    bash tools/dist_train.sh CONFIG 8                     # 8 processes
"""
import argparse
import os.path as osp
import sys
import time

from mmengine.config import DictAction

#: Values of ``--launcher`` (``none``: one process, no process group).
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a model (mmseg / mmdet / mmpretrain config).')
    parser.add_argument('config', help='config file path (or pkg::path)')
    parser.add_argument(
        '--work-dir',
        help='directory for logs and checkpoints '
        '(default: ./work_dirs/<config stem>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CHECKPOINT; without a value, resume from the '
        'newest readable checkpoint in the work dir (unreadable ones are '
        'skipped with a warning; none: train from the start)')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help="load only the tensors of the config's load_from checkpoint "
        'that fit the model (by name and shape, a backbone-only file into '
        'its backbone) and list what was skipped; without it a checkpoint '
        'that does not fit the model exactly is an error')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (AmpOptimWrapper: bf16 where the '
        'GPU supports it, else fp16 with dynamic '
        'loss scaling); needs CUDA, ignored with a warning on CPU')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value pairs, e.g. '
        'train_cfg.max_iters=100 "model.backbone.out_indices=[2,5]"')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmeac.utils import toolkit
    try:
        cfg = toolkit.load_config(args.config, args.cfg_options)
        loaders = ['train_dataloader']
        if cfg.get('val_cfg', None) is not None:
            loaders.append('val_dataloader')
        toolkit.check_data_roots(cfg, loaders)
        cfg.work_dir = toolkit.default_work_dir(cfg, args.config,
                                                args.work_dir)
        toolkit.import_mmeac()
        toolkit.check_eac_backbones(cfg)
        toolkit.use_amp(cfg, args.amp)
        toolkit.resolve_resume(cfg, args.resume, sys.argv[0])
        toolkit.check_writable(cfg.work_dir, '--work-dir', is_dir=True)
        if cfg.get('load_from', None):
            toolkit.check_checkpoint(
                cfg,
                args.config,
                cfg.load_from,
                resume=bool(cfg.get('resume', False)),
                partial=args.partial_load)
        toolkit.use_safe_checkpoints(cfg)
        toolkit.setup_launcher(cfg, args.launcher, args.local_rank)
    except toolkit.ToolError as e:
        toolkit.fail(sys.argv[0], str(e))

    from mmeac.errors import InputError, one_line
    created = toolkit.NewPaths(cfg.work_dir)
    start = time.time()
    runner = None
    try:
        runner = toolkit.build_runner(cfg)
        toolkit.check_samples(runner, cfg, loaders)
        runner.train()
    except InputError as e:
        if not _saved_since(cfg.work_dir, start):
            created.remove(runner)  # nothing of value was written
        toolkit.fail(sys.argv[0], one_line(e))
    toolkit.finish_distributed()


def _saved_since(work_dir: str, start: float) -> bool:
    """Whether this run wrote a checkpoint (``last_checkpoint`` updated)."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    return osp.isfile(pointer) and osp.getmtime(pointer) >= start - 1


if __name__ == '__main__':
    main()
