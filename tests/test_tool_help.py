"""``--help`` of every tool: exit 0 and its usage, before the OpenMMLab
model zoos are imported (the tools import them in ``main()``, after their
argument parser has run). The entry points answer before torch is imported
too; the analysis, deployment and demo tools take their shared options from
:mod:`mmeac.utils.cli`, so they import mmeac (and torch) to parse."""
import os.path as osp
import sys
import textwrap

import pytest
from _tool_helpers import REPO, run

#: The tools whose ``--help`` imports none of ``HEAVY``.
LIGHT_TOOLS = ('tools/train.py', 'tools/test.py',
               'tools/analysis_tools/elasticity_study.py',
               'tools/misc/make_builtin_data.py',
               'tools/model_converters/veca2mmeac.py')
#: The tools built on :mod:`mmeac.utils.cli`: no ``MODEL_ZOOS``.
CLI_TOOLS = ('tools/analysis_tools/benchmark.py',
             'tools/analysis_tools/benchmark_attention.py',
             'tools/analysis_tools/eval_budgets.py',
             'tools/analysis_tools/get_flops.py',
             'tools/analysis_tools/visualize_cores.py',
             'tools/deployment/pytorch2onnx.py', 'demo/image_demo.py')
#: Every Python tool, the light ones first (the modules one tool loads stay
#: loaded for the next).
TOOLS = LIGHT_TOOLS + CLI_TOOLS
MODEL_ZOOS = ('mmseg', 'mmdet', 'mmpretrain')
#: Modules the light tools' ``--help`` must not import.
HEAVY = ('torch', 'mmcv', 'mmeac') + MODEL_ZOOS

# Runs each tool as ``__main__`` with ``--help`` in this one interpreter and
# prints, per tool, its exit status, the heavy modules loaded so far and the
# first line of its help. A tool that loads one is the first to show it.
WRAPPER = textwrap.dedent('''
    import contextlib, io, json, os, runpy, sys
    heavy, out = sys.argv[1].split(','), {}
    for path in sys.argv[2:]:
        sys.argv = [path, '--help']
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            try:
                runpy.run_path(path, run_name='__main__')
                code = 'no exit'
            except SystemExit as exc:
                code = exc.code
        out[path] = dict(
            code=code,
            loaded=[m for m in heavy if m in sys.modules],
            usage=buf.getvalue().splitlines()[:1])
    print(json.dumps(out))
''')


def test_help_of_every_tool_imports_no_model_zoo():
    import json
    proc = run(
        [sys.executable, '-c', WRAPPER, ','.join(HEAVY)] +
        [osp.join(REPO, t) for t in TOOLS],
        cwd=REPO,
        timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for tool in TOOLS:
        got = result[osp.join(REPO, tool)]
        assert got['code'] == 0, (tool, got)
        assert got['usage'] and got['usage'][0].startswith(
            f'usage: {osp.basename(tool)}'), (tool, got)
        if tool in LIGHT_TOOLS:
            assert got['loaded'] == [], (tool, got)
        else:
            assert not set(got['loaded']) & set(MODEL_ZOOS), (tool, got)
            assert 'mmeac' in got['loaded'], (tool, got)  # its options


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_help_in_a_fresh_process_does_not_import_torch(tool):
    """The script as users run it: ``-X importtime`` lists every module
    the interpreter imported."""
    proc = run(
        [sys.executable, '-X', 'importtime',
         osp.join(REPO, tool), '--help'],
        cwd=REPO,
        timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f'usage: {osp.basename(tool)}')
    imported = {
        line.rsplit('|', 1)[-1].strip().split('.')[0]
        for line in proc.stderr.splitlines() if line.startswith('import time:')
    }
    assert 'argparse' in imported  # the listing is there ...
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
