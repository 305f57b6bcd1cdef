"""Command-line options the mmeac tools share.

Each ``add_*`` function adds one option to an ``argparse`` parser, with the
same name, default and help text in every tool that takes it. The analysis,
deployment and demo tools build their parsers with them, so they import
mmeac (and torch) to parse, as OpenMMLab's tools do. The entry points
``tools/train.py`` and ``tools/test.py`` (and the data generator and the
weight converter) define their few options themselves and answer ``--help``
before torch is imported (``tests/test_tool_help.py``).
"""
from argparse import ArgumentParser

from mmengine.config import DictAction

__all__ = [
    'add_cfg_options', 'add_num_cores', 'add_json', 'add_no_progress',
    'add_overwrite'
]


def add_cfg_options(parser: ArgumentParser) -> None:
    """``--cfg-options KEY=VALUE ...``: settings merged into the config."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        metavar='KEY=VALUE',
        help='override config settings, e.g. model.backbone.num_cores=16')


def add_num_cores(parser: ArgumentParser) -> None:
    """``--num-cores C``: the core budget to run at (None: the model's)."""
    parser.add_argument(
        '--num-cores',
        type=int,
        default=None,
        help="core budget (default: the model's)")


def add_json(parser: ArgumentParser) -> None:
    """``--json PATH``: also write the results as JSON."""
    parser.add_argument(
        '--json', metavar='PATH', help='also write the results as JSON')


def add_no_progress(parser: ArgumentParser) -> None:
    """``--no-progress``: no progress bar on the terminal."""
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bar')


def add_overwrite(parser: ArgumentParser, what: str) -> None:
    """``--overwrite``: replace ``what`` (files the tool writes) where they
    exist; without it the tool stops before any work."""
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help=f'replace {what} where already there (refused otherwise)')
