"""Train a model from an mmseg, mmdet or mmpretrain config.

The config's ``default_scope`` decides which library builds the model, the
datasets and the metrics; ``import mmeac`` (via :mod:`mmeac.utils.toolkit`)
applies the compatibility fixes and registers the mmeac modules first.

Examples::

    python tools/train.py configs/eac/xxx.py
    python tools/train.py CONFIG --work-dir work_dirs/run1 --amp
    python tools/train.py CONFIG --resume                 # latest in work dir
    python tools/train.py CONFIG --resume work_dirs/run1/iter_2000.pth
    bash tools/dist_train.sh CONFIG 8                     # 8 processes
"""
import argparse
import logging
import os
import os.path as osp
import sys

from mmengine.config import DictAction

from mmeac.utils.toolkit import (LAUNCHERS, ToolError, build_runner,
                                 check_data_roots, check_eac_backbones,
                                 default_work_dir, fail, finish_distributed,
                                 import_mmeac, load_config, setup_launcher)


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
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (AmpOptimWrapper, fp16 with dynamic '
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
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
        loaders = ['train_dataloader']
        if cfg.get('val_cfg', None) is not None:
            loaders.append('val_dataloader')
        check_data_roots(cfg, loaders)
        cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)
        import_mmeac()
        check_eac_backbones(cfg)

        if args.amp:
            import torch
            if torch.cuda.is_available():
                cfg.optim_wrapper.type = 'AmpOptimWrapper'
                cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
            else:
                from mmengine.logging import print_log
                print_log(
                    '--amp needs CUDA (AmpOptimWrapper); training in fp32',
                    logger='current',
                    level=logging.WARNING)

        if args.resume == 'auto':
            cfg.resume = True
            cfg.load_from = None
        elif args.resume is not None:
            if not osp.isfile(args.resume) and '://' not in args.resume:
                raise ToolError(
                    f"checkpoint '{args.resume}' to resume from does not "
                    'exist')
            cfg.resume = True
            cfg.load_from = args.resume

        setup_launcher(cfg, args.launcher)
    except ToolError as e:
        fail(sys.argv[0], str(e))

    runner = build_runner(cfg)
    runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
