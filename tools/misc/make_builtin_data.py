"""Generate the built-in synthetic datasets (ADE20K, COCO, ImageNet layouts).

Examples::

    python tools/misc/make_builtin_data.py all --out data
    python tools/misc/make_builtin_data.py ade20k --out data --size 512 \\
        --num-train 200 --num-val 50
    python tools/misc/make_builtin_data.py coco --out data --size 512x384

Layouts (the default ``data_root`` of the upstream configs under ``data/``):
``OUT/ade/ADEChallengeData2016``, ``OUT/coco``, ``OUT/imagenet``. See
:mod:`mmeac.testing.synthetic` for classes, label conventions and
annotations. Generation is deterministic for a given seed; an existing
dataset made with the same parameters is left as is; one made with other
parameters is regenerated with ``--force``; a directory this tool did not
make (no manifest, or files the manifest does not account for) is never
replaced or deleted, ``--force`` or not.
"""
import argparse
import sys
import time

#: The layouts, each written by ``mmeac.testing.synthetic.make_<name>``.
DATASETS = ('ade20k', 'coco', 'imagenet')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the built-in synthetic datasets.')
    parser.add_argument(
        'dataset',
        choices=list(DATASETS) + ['all'],
        help='which layout to write')
    parser.add_argument(
        '--out', default='data', help='output root (default: data)')
    parser.add_argument(
        '--size',
        default='256',
        help='image size: N (square) or WIDTHxHEIGHT (default: 256)')
    parser.add_argument(
        '--num-train', type=int, default=20, help='training images')
    parser.add_argument(
        '--num-val', type=int, default=10, help='validation images')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--force',
        action='store_true',
        help='regenerate built-in data made with other parameters (a '
        'directory this tool did not make is never replaced)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmeac.testing import synthetic
    from mmeac.utils.toolkit import error
    try:
        size = synthetic.parse_size(args.size)
        for name, n in (('--num-train', args.num_train), ('--num-val',
                                                          args.num_val)):
            if n < 1:
                raise ValueError(f'{name} must be at least 1, got {n}')
    except ValueError as e:
        return error(sys.argv[0], e)
    names = list(DATASETS) if args.dataset == 'all' else [args.dataset]
    for name in names:
        start = time.time()
        try:
            root = getattr(synthetic, f'make_{name}')(
                args.out,
                size=size,
                num_train=args.num_train,
                num_val=args.num_val,
                seed=args.seed,
                force=args.force)
        except (synthetic.BuiltinDataExistsError, OSError) as e:
            return error(sys.argv[0], e, status=1)
        print(f'{name}: {root} ({args.num_train} train + {args.num_val} val, '
              f'{size[0]}x{size[1]}, seed {args.seed}, '
              f'{time.time() - start:.1f}s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
