"""Run an mmeac segmentor, detector or classifier on an image (or a folder)
and draw the result over it.

The config's ``default_scope`` decides the task (mmseg / mmdet /
mmpretrain); the upstream inferencer of that library loads the checkpoint
and runs the model (see :class:`mmeac.apis.EACInferencer`), and its
visualizer draws the result.

Examples::

    python demo/image_demo.py demo.jpg \\
        configs/eac/upernet_eac-b_8xb2-160k_ade20k-512x512.py upernet.pth \\
        --out-file out/demo_seg.png --num-cores 32
    python demo/image_demo.py photos/ CONFIG CKPT --out-dir out/  # folder
    python demo/image_demo.py big.jpg SEG_CONFIG CKPT --whole-image \\
        --out-file big_seg.png  # native resolution, one pass

Without ``--out-file`` / ``--out-dir`` only a one-line summary per image is
printed. Bad input (a missing or undecodable image, a budget the model does
not have, a missing config or checkpoint) ends with one line naming the
problem and exit status 2, before anything is written.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mmeac.utils import cli

PROG = 'image_demo.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Draw an mmeac model\'s prediction over an image.')
    parser.add_argument('img', help='image file or a folder of images')
    parser.add_argument('config', help='config file (or pkg::path)')
    parser.add_argument('checkpoint', help='checkpoint file')
    out = parser.add_mutually_exclusive_group()
    out.add_argument(
        '--out-file', help='where to write the drawing (one image)')
    out.add_argument(
        '--out-dir',
        help='folder for the drawings, one <image name>.png per image')
    cli.add_overwrite(parser, 'the drawings')
    cli.add_num_cores(parser)
    parser.add_argument(
        '--device',
        default=None,
        help='cpu or cuda (default: cuda when available, else cpu)')
    parser.add_argument(
        '--whole-image',
        action='store_true',
        help='segmentors: no resize, one pass at the image\'s own size')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='detections: smallest score drawn (default 0.3)')
    parser.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='segmentation: mask opacity in (0, 1] (default 0.5)')
    cli.add_no_progress(parser)
    cli.add_cfg_options(parser)
    return parser.parse_args(argv)


def _write_image(img_rgb, path: str) -> None:
    """Write the drawing atomically (a temporary file, then a rename)."""
    import mmcv

    from mmeac.utils.fileio import atomic_path
    with atomic_path(path, suffix=osp.splitext(path)[1]) as tmp:
        if not mmcv.imwrite(mmcv.rgb2bgr(img_rgb), tmp, auto_mkdir=False):
            raise OSError(f'could not write {path}')


def _check_args(args) -> None:
    """Raise ``ValueError`` naming the first problem of the command line
    that needs no model."""
    from mmeac.apis.inference import IMAGE_EXTENSIONS, list_images
    if not osp.exists(args.img):
        raise ValueError(f'image {args.img} does not exist')
    is_dir = osp.isdir(args.img)
    if is_dir and args.out_file:
        raise ValueError(f'{args.img} is a folder: use --out-dir for its '
                         'drawings, not --out-file')
    if args.out_file:
        if not args.out_file.lower().endswith(IMAGE_EXTENSIONS):
            raise ValueError(
                f'--out-file {args.out_file} needs an image extension '
                f'({", ".join(IMAGE_EXTENSIONS)})')
        if osp.abspath(args.out_file) == osp.abspath(args.img):
            raise ValueError(
                f'--out-file {args.out_file} is the input image itself')
    if args.out_dir and osp.exists(
            args.out_dir) and not osp.isdir(args.out_dir):
        raise ValueError(
            f'--out-dir {args.out_dir} exists and is not a folder')
    images = list_images(args.img) if is_dir else [args.img]
    if not args.overwrite:
        for i, image in enumerate(images):
            target = _out_path(args, image, i)
            if target is not None and osp.exists(target):
                raise ValueError(
                    f'{target} exists; pass --overwrite to replace it')
    if not osp.isfile(args.checkpoint):
        raise ValueError(f'checkpoint {args.checkpoint} does not exist')
    if not 0 < args.opacity <= 1:
        raise ValueError(f'--opacity must be in (0, 1], got {args.opacity}')


def _out_path(args, image: str, index: int) -> Optional[str]:
    if args.out_file:
        return args.out_file
    if args.out_dir:
        stem = osp.splitext(osp.basename(image))[0] if isinstance(
            image, str) else f'image_{index}'
        return osp.join(args.out_dir, stem + '.png')
    return None


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmeac.apis import EACInferencer, expand_inputs
    from mmeac.utils.toolkit import error
    try:
        _check_args(args)
        # every image is checked before the model is built or anything runs
        images = expand_inputs(args.img)
        inferencer = EACInferencer(
            args.config,
            args.checkpoint,
            device=args.device,
            num_cores=args.num_cores,
            cfg_options=args.cfg_options,
            whole_image=args.whole_image,
            show_progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as err:
        return error(PROG, str(err))
    print(f'{PROG}: {inferencer.task} model, {inferencer.num_cores} cores, '
          f'{len(images)} image(s)')
    preds = inferencer.iter_predict(images)
    for i, (image, pred) in enumerate(preds):
        name = image if isinstance(image, str) else f'image {i}'
        print(f'{name}: {inferencer.summarize(pred, args.score_thr)}')
        out = _out_path(args, image, i)
        if out is not None:
            drawn = inferencer.visualize(
                image, pred, score_thr=args.score_thr, opacity=args.opacity)
            _write_image(drawn, out)
            print(f'  drawn to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
