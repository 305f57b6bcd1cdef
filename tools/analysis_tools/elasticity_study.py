"""Elasticity study: nested-dropout vs fixed-budget training of EAC.

Two small EAC segmentors are trained alike on the built-in ADE20K-layout
data (same architecture, data, seed, schedule and head) except for the core
budget during training:

* ``nested``: one budget per iteration drawn from every multiple of
  ``--core-chunk`` up to ``--max-cores`` (nested dropout over the cores);
* ``fixed``: always the full budget (``train_num_cores=max_cores``).

Each model is then evaluated (mIoU on the validation split) at every budget.
Nested dropout should keep most of its full-budget mIoU at the smallest
budget, while the fixed-budget model falls further.

Writes ``elasticity.json`` and ``elasticity.md`` to ``--work-dir``, plus the
two models' checkpoints and configs (``nested/``, ``fixed/``), which can be
fed to ``visualize_cores.py``.

Model: ``EncoderDecoder`` with an ``EACViT`` backbone (4 blocks, 96 dims, 4
heads, patch 8, 64 cores, i.e. budgets 8..64 with the paper's weights, at
128 px: 256 patches) and a linear decode head (1x1 convolution on the last
feature map, the EAC paper's probe); 500 iterations of batch 8. About 10-15
minutes on 2 idle CPU cores with ``--jobs 2``.

Task: in the built-in data every class has its own flat colour, so each
patch can label itself from its own pixels; trained that way, both variants
keep 100% at every budget (even at one core), because nothing the labels
need travels through the cores. The study therefore blanks a fraction
(``--mask-ratio``, default 0.6) of the patches of every training and
validation image (filled with the normalisation mean; labels kept; the
validation masks are fixed per image): a blanked patch can only recover its
class from its neighbours, through the cores, the one path between patches
in EAC. The budget then decides how much of that context reaches it. The
blanking is mmeac's ``RandomPatchMask`` transform
(:mod:`mmeac.datasets.transforms`).

Example::

    OMP_NUM_THREADS=1 python tools/analysis_tools/elasticity_study.py \\
        --work-dir work_dirs/elasticity --jobs 2
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

PROG = 'elasticity_study.py'
VARIANTS = ('nested', 'fixed')
INPUTS = ('color', 'gray')
#: The command-line settings the report records.
SETTINGS = ('arch', 'patch_size', 'max_cores', 'core_chunk', 'size', 'iters',
            'batch_size', 'lr', 'num_train', 'num_val', 'seed', 'input',
            'mask_ratio')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train nested-dropout and fixed-budget EAC segmentors '
        'and evaluate both at every core budget.')
    parser.add_argument('--work-dir', default='work_dirs/elasticity')
    parser.add_argument(
        '--data-root',
        default=None,
        help='root for the built-in data (default: WORK_DIR/data); the '
        'ADE20K layout is generated there when missing')
    parser.add_argument('--size', type=int, default=128, help='image px')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--iters', type=int, default=500)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument(
        '--arch',
        default='{"embed_dims": 96, "num_layers": 4, "num_heads": 4, '
        '"mlp_ratio": 2.0}',
        help='EAC arch (name or JSON dict)')
    parser.add_argument('--patch-size', type=int, default=8)
    parser.add_argument('--max-cores', type=int, default=64)
    parser.add_argument('--core-chunk', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--input',
        default='color',
        choices=INPUTS,
        help='color (default) or grayscale images')
    parser.add_argument(
        '--mask-ratio',
        type=float,
        default=0.6,
        help='fraction of patches blanked in every image, train and val '
        '(default 0.6; 0 disables)')
    parser.add_argument(
        '--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='train the variants in this many parallel processes (2 uses '
        'two CPU cores best: small models scale poorly with threads)')
    parser.add_argument(
        '--skip-train',
        action='store_true',
        help='evaluate existing checkpoints in WORK_DIR only')
    return parser.parse_args(argv)


def seg_config(args, variant: str, data_root: str, work_dir: str) -> Dict:
    """The mmseg config of one variant (everything but the budget shared)."""
    from mmeac.analysis.analysis_models import (linear_segmentor, model_arch,
                                                parse_arch)
    arch = parse_arch(args.arch)
    dims = model_arch(arch)['embed_dims']
    crop = (args.size, args.size)
    gray = args.input == 'gray'
    if not 0 <= args.mask_ratio < 1:
        raise ValueError(f'--mask-ratio must be in [0, 1), got '
                         f'{args.mask_ratio}')
    mean = [127.5] if gray else [123.675, 116.28, 103.53]
    std = [64.0] if gray else [58.395, 57.12, 57.375]

    def masking(fixed: bool) -> List[Dict]:
        if args.mask_ratio == 0:
            return []
        # the fill is the normalisation mean, in the loaded (BGR) order
        return [
            dict(
                type='RandomPatchMask',
                patch_size=args.patch_size,
                ratio=args.mask_ratio,
                fill=mean[::-1],
                fixed=fixed)
        ]

    backbone = dict(
        type='EACViT',
        arch=arch,
        in_channels=1 if gray else 3,
        patch_size=args.patch_size,
        max_cores=args.max_cores,
        core_chunk=args.core_chunk,
        out_indices=-1,
        final_norm=True,
        drop_path_rate=0.0)
    if variant == 'fixed':
        backbone['train_num_cores'] = args.max_cores
    load = dict(
        type='LoadImageFromFile', color_type='grayscale' if gray else 'color')
    train_pipeline = [
        load,
        dict(type='LoadAnnotations', reduce_zero_label=True),
        dict(
            type='RandomResize',
            scale=crop,
            ratio_range=(0.75, 1.5),
            keep_ratio=True),
        dict(type='RandomCrop', crop_size=crop, cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5),
    ] + masking(fixed=False) + [dict(type='PackSegInputs')]
    test_pipeline = [
        load,
        dict(type='Resize', scale=crop, keep_ratio=True),
        dict(type='LoadAnnotations', reduce_zero_label=True),
    ] + masking(fixed=True) + [dict(type='PackSegInputs')]

    def loader(split: str, pipeline, batch: int, train: bool) -> Dict:
        return dict(
            batch_size=batch,
            num_workers=0,
            persistent_workers=False,
            sampler=dict(type='InfiniteSampler', shuffle=True)
            if train else dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='ADE20KDataset',
                data_root=data_root,
                data_prefix=dict(
                    img_path=f'images/{split}',
                    seg_map_path=f'annotations/{split}'),
                pipeline=pipeline))

    model = linear_segmentor(backbone, dims, dropout_ratio=0.0)
    model['data_preprocessor'] = dict(
        type='SegDataPreProcessor',
        mean=mean,
        std=std,
        bgr_to_rgb=not gray,
        pad_val=0,
        seg_pad_val=255,
        size=crop)
    warmup = max(1, args.iters // 10)
    return dict(
        default_scope='mmseg',
        custom_imports=dict(imports=['mmeac'], allow_failed_imports=False),
        work_dir=work_dir,
        model=model,
        train_dataloader=loader('training', train_pipeline, args.batch_size,
                                True),
        val_dataloader=loader('validation', test_pipeline, 1, False),
        test_dataloader=loader('validation', test_pipeline, 1, False),
        val_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        optim_wrapper=dict(
            type='OptimWrapper',
            optimizer=dict(
                type='AdamW',
                lr=args.lr,
                betas=(0.9, 0.999),
                weight_decay=0.01),
            clip_grad=dict(max_norm=1.0)),
        param_scheduler=[
            dict(
                type='LinearLR',
                start_factor=1e-2,
                by_epoch=False,
                begin=0,
                end=warmup),
            dict(
                type='PolyLR',
                eta_min=0.0,
                power=1.0,
                begin=warmup,
                end=args.iters,
                by_epoch=False)
        ],
        train_cfg=dict(
            type='IterBasedTrainLoop',
            max_iters=args.iters,
            val_begin=args.iters + 1,
            val_interval=args.iters + 1),
        val_cfg=dict(type='ValLoop'),
        test_cfg=dict(type='TestLoop'),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(
                type='LoggerHook', interval=50, log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(
                type='CheckpointHook',
                by_epoch=False,
                interval=args.iters,
                max_keep_ckpts=1),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
            dist_cfg=dict(backend='gloo')),
        log_processor=dict(by_epoch=False),
        log_level='WARNING',
        randomness=dict(seed=args.seed),
        visualizer=dict(
            type='SegLocalVisualizer',
            vis_backends=[dict(type='LocalVisBackend')],
            name=f'visualizer_{variant}'),
        load_from=None,
        resume=False)


def run_variant(args, variant: str, data_root: str) -> Dict:
    """Train (unless ``--skip-train``) and evaluate at every budget."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner
    work_dir = osp.join(args.work_dir, variant)
    cfg = Config(seg_config(args, variant, data_root, work_dir))
    ckpt = osp.join(work_dir, f'iter_{args.iters}.pth')
    if args.skip_train:
        if not osp.isfile(ckpt):
            raise FileNotFoundError(f'--skip-train: {ckpt} does not exist')
        cfg.load_from = ckpt
    runner = Runner.from_cfg(cfg)
    t0 = time.time()
    if not args.skip_train:
        runner.train()
        cfg.dump(osp.join(work_dir, 'config.py'))
    else:
        runner.load_or_resume()
    train_s = time.time() - t0
    backbone = runner.model.backbone
    scores = {}
    for budget in backbone.allowed_budgets:
        backbone.num_cores = budget
        metrics = runner.val_loop.run()
        scores[budget] = dict(
            mIoU=float(metrics['mIoU']),
            aAcc=float(metrics.get('aAcc', float('nan'))))
    del runner
    torch.set_grad_enabled(True)
    return dict(
        train_num_cores=None if variant == 'nested' else args.max_cores,
        train_budgets=list(backbone.train_budgets)
        if variant == 'nested' else [args.max_cores],
        train_seconds=train_s,
        checkpoint=ckpt,
        scores=scores)


def _variant_worker(args, variant: str, data_root: str, conn) -> None:
    """Child process: train and evaluate one variant, send the result."""
    import traceback

    import torch
    try:
        torch.set_num_threads(max(1, torch.get_num_threads() // args.jobs))
        conn.send(('ok', run_variant(args, variant, data_root)))
    except BaseException:  # report any failure to the parent
        conn.send(('error', traceback.format_exc()))
    finally:
        conn.close()


def _run_parallel(args, data_root: str) -> Dict:
    """Run the variants in forked processes at once (threads shared)."""
    import multiprocessing as mp
    ctx = mp.get_context('fork')
    running = {}
    for variant in args.variants:
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_variant_worker, args=(args, variant, data_root, send))
        proc.start()
        send.close()
        running[variant] = (proc, recv)
    results, errors = {}, []
    for variant, (proc, recv) in running.items():
        try:
            status, payload = recv.recv()
        except EOFError:
            status, payload = 'error', f'process exited with {proc.exitcode}'
        proc.join()
        if status == 'ok':
            results[variant] = payload
        else:
            errors.append(f'{variant}: {payload}')
    if errors:
        raise RuntimeError('variant(s) failed:\n' + '\n'.join(errors))
    return results


def markdown(report: Dict) -> str:
    res = report['variants']
    budgets = sorted({b for v in res.values() for b in v['scores']})
    full = max(budgets)
    s = report['settings']
    lines = [
        '| budget C | ' + ' | '.join(f'{v} mIoU | {v} kept'
                                     for v in res) + ' |',
        '|---|' + '---|---|' * len(res)
    ]
    for b in budgets:
        cells = []
        for v in res.values():
            m = v['scores'][b]['mIoU']
            ref = v['scores'][full]['mIoU']
            cells.append(
                f'{m:.2f} | {100 * m / ref:.0f}%' if ref else f'{m:.2f} | -')
        lines.append(f'| {b} | ' + ' | '.join(cells) + ' |')
    lines += [
        '', ('Grayscale' if s.get('input') == 'gray' else 'RGB') +
        (f" input, {100 * s['mask_ratio']:.0f}% of the patches blanked in "
         'every train and val image (labels kept), '
         if s.get('mask_ratio') else ' input, ') +
        f"EAC {s['arch']} patch {s['patch_size']}, {s['max_cores']} cores, "
        f"{s['size']} px ({s['num_patches']} patches), linear head, "
        f"{s['iters']} iterations x batch {s['batch_size']} on "
        f"{s['num_train']} built-in ADE20K-layout images, mIoU (%) on "
        f"{s['num_val']} validation images; \"kept\" = mIoU at C relative to "
        f'C = {full}. nested: budgets drawn per iteration; fixed: '
        f'train_num_cores = {full}.'
    ]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import mmeac  # noqa: F401
    from mmeac.testing import make_ade20k
    from mmeac.utils.fileio import write_text_atomic
    from mmeac.utils.toolkit import error
    if args.max_cores % args.core_chunk or args.max_cores < args.core_chunk:
        return error(PROG, '--max-cores must be a multiple of --core-chunk')
    if args.size < args.patch_size or args.iters < 1:
        return error(PROG, '--size must be >= --patch-size and --iters >= 1')
    if not 0 <= args.mask_ratio < 1:
        return error(PROG,
                     f'--mask-ratio must be in [0, 1), got {args.mask_ratio}')
    os.makedirs(args.work_dir, exist_ok=True)
    data_parent = args.data_root or osp.join(args.work_dir, 'data')
    data_root = make_ade20k(
        data_parent,
        size=args.size,
        num_train=args.num_train,
        num_val=args.num_val,
        seed=args.seed)
    settings = {key: getattr(args, key) for key in SETTINGS}
    settings.update(
        num_patches=(args.size // args.patch_size)**2, data_root=data_root)
    report = dict(settings=settings, variants={})
    if args.jobs > 1 and len(args.variants) > 1:
        report['variants'] = _run_parallel(args, data_root)
    else:
        for variant in args.variants:
            report['variants'][variant] = run_variant(args, variant, data_root)
    md = markdown(report)
    for name, text in (('elasticity.json', json.dumps(report, indent=2)),
                       ('elasticity.md', md + '\n')):
        write_text_atomic(osp.join(args.work_dir, name), text)
    print(md)
    return 0


if __name__ == '__main__':
    sys.exit(main())
