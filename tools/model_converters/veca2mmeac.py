#!/usr/bin/env python
"""Convert an EAC authors' (VECA) checkpoint into an mmeac checkpoint.

Usage:
    python tools/model_converters/veca2mmeac.py SRC DST

SRC is a ``torch.save`` dict with ``"student"`` (keys may carry ``student.`` or
``module.`` prefixes) and ``"config"``. DST gets ``{"state_dict": ...,
"meta": {...}}`` with q/k/v fused, loadable through
``init_cfg=dict(type='Pretrained', checkpoint=DST)``. The architecture read
from SRC is printed, with the matching ``EACViT`` keyword arguments.
Optimizer state is dropped. Nothing is written when SRC is not a VECA
checkpoint or its tensors disagree with its config.
"""
import argparse
import os
import os.path as osp
import pickle
import sys
import tempfile

import torch


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a VECA (EAC authors) checkpoint to mmeac.')
    parser.add_argument('src', help='authors\' checkpoint (.pt)')
    parser.add_argument('dst', help='output mmeac checkpoint (.pth)')
    parser.add_argument(
        '--arch',
        default=None,
        help="expected arch ('s', 's+', 'b', 'l'); error if SRC differs")
    return parser.parse_args(argv)


def load_source(path: str) -> dict:
    """Load SRC, weights-only first; trusted pickles second with a warning."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'source checkpoint {path} does not exist')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        print(f'warning: {path} holds more than tensors and plain types; '
              'loading it with weights_only=False (only do this for files '
              'you trust)', file=sys.stderr)
        return torch.load(path, map_location='cpu', weights_only=False)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmeac.models.backbones.veca_checkpoint import (arch_name,
                                                        convert_veca_checkpoint)
    try:
        ckpt = load_source(args.src)
        state, kwargs = convert_veca_checkpoint(ckpt)
    except (ValueError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    name = arch_name(kwargs['arch'])
    if args.arch is not None and args.arch != name:
        print(f'error: {args.src} holds arch {name!r} '
              f'({kwargs["arch"]}), not {args.arch!r}', file=sys.stderr)
        return 1
    meta = dict(
        source='veca',
        arch_name=name,
        eac_vit_kwargs=kwargs,
        veca_config=ckpt.get('config'),
        epoch=ckpt.get('epoch'))
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst_dir, suffix='.tmp')
    os.close(fd)
    try:
        torch.save(dict(state_dict=state, meta=meta), tmp)
        os.replace(tmp, args.dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    print(f'arch: {name} {kwargs["arch"]}')
    print('EACViT kwargs: ' + ', '.join(
        f'{k}={v!r}' for k, v in kwargs.items()))
    print(f'saved {len(state)} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
