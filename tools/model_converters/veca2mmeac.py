#!/usr/bin/env python
"""Convert an EAC authors' (VECA) checkpoint into an mmeac checkpoint.

Usage:
    python tools/model_converters/veca2mmeac.py SRC DST [--overwrite]

SRC is a ``torch.save`` dict with ``"student"`` (keys may carry ``student.`` or
``module.`` prefixes) and ``"config"``; every family of the authors' presets
(S, S+, B, L) converts. DST gets ``{"state_dict": ..., "meta": {...}}`` with
q/k/v fused, loadable through ``init_cfg=dict(type='Pretrained',
checkpoint=DST)``. ``meta`` records the ``EACViT`` keyword arguments read from
SRC, RoPE settings included (``EACViT`` refuses the file when built with other
ones), and keeps the distillation projection ``output_proj`` aside
(``meta['veca_output_proj']``; it is not part of the backbone). Optimizer
state is dropped.

An existing DST is refused unless ``--overwrite``; DST is written atomically
(a temporary file in its directory, then a rename), so nothing is written or
changed when SRC is not a VECA checkpoint or its tensors disagree with its
config.
"""
import argparse
import os.path as osp
import pickle
import sys

PROG = osp.basename(__file__)
EXPECTED = ('expected an EAC authors\' (VECA) checkpoint: a torch.save dict '
            'with a "student" state dict and a "config"')


class ConvertError(Exception):
    """A user-facing error, printed as one line."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a VECA (EAC authors) checkpoint to mmeac.')
    parser.add_argument('src', help='authors\' checkpoint (.pt)')
    parser.add_argument('dst', help='output mmeac checkpoint (.pth)')
    parser.add_argument(
        '--arch',
        default=None,
        help="expected arch ('s', 's+', 'b', 'l'); error if SRC differs")
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace DST if it exists (refused otherwise)')
    return parser.parse_args(argv)


def load_source(path: str) -> dict:
    """Load SRC, weights-only first; trusted pickles second with a warning.

    Raises:
        ConvertError: SRC is missing, unreadable or not a checkpoint.
    """
    import torch
    if not osp.exists(path):
        raise ConvertError(f'source checkpoint {path} does not exist')
    if not osp.isfile(path):
        raise ConvertError(f'source checkpoint {path} is not a file')
    try:
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as err:
            if 'Weights only load failed' not in str(err):
                raise
        print(
            f'{PROG}: warning: {path} holds more than tensors and plain '
            'types; loading it with weights_only=False (only do this for '
            'files you trust)',
            file=sys.stderr)
        return torch.load(path, map_location='cpu', weights_only=False)
    except OSError as err:
        raise ConvertError(f'cannot read {path}: {err.strerror or err}')
    except Exception:  # truncated, text, other pickles: no useful detail
        raise ConvertError(
            f'{path} is not a checkpoint (torch.load cannot read it: empty, '
            f'truncated or not a torch.save file); {EXPECTED}') from None


def _check_destination(src: str, dst: str, overwrite: bool) -> None:
    if osp.isdir(dst):
        raise ConvertError(f'destination {dst} is a directory')
    if osp.exists(dst):
        if osp.exists(src) and osp.samefile(src, dst):
            raise ConvertError(f'destination {dst} is the source file')
        if not overwrite:
            raise ConvertError(f'destination {dst} exists; pass --overwrite '
                               'to replace it')


def _save_atomic(obj: dict, dst: str) -> None:
    """``torch.save`` to DST through a temporary file (atomic)."""
    import torch

    from mmeac.utils.fileio import atomic_path
    with atomic_path(dst) as tmp:
        torch.save(obj, tmp)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmeac.models.backbones.veca_checkpoint import (
        arch_name, convert_veca_checkpoint, describe_output_proj,
        veca_output_proj)
    from mmeac.utils.toolkit import error
    try:
        _check_destination(args.src, args.dst, args.overwrite)
        ckpt = load_source(args.src)
        try:
            state, kwargs = convert_veca_checkpoint(ckpt)
            proj = veca_output_proj(ckpt)
        except ValueError as err:
            raise ConvertError(f'{args.src}: {err}')
        name = arch_name(kwargs['arch'])
        if args.arch is not None and args.arch != name:
            raise ConvertError(f'{args.src} holds arch {name!r} '
                               f'({kwargs["arch"]}), not {args.arch!r}')
    except ConvertError as err:
        return error(PROG, err, status=1)
    meta = dict(
        source='veca',
        arch_name=name,
        eac_vit_kwargs=kwargs,
        veca_config=ckpt.get('config'),
        epoch=ckpt.get('epoch'))
    if proj:
        meta['veca_output_proj'] = proj
    _save_atomic(dict(state_dict=state, meta=meta), args.dst)
    print(f'arch: {name} {kwargs["arch"]}')
    print('EACViT kwargs: ' + ', '.join(f'{k}={v!r}'
                                        for k, v in kwargs.items()))
    if proj:
        print(f'note: {describe_output_proj(proj)}; kept aside in '
              "meta['veca_output_proj']")
    print(f'saved {len(state)} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
