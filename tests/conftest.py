"""Shared test configuration.

The authors' fixtures (``../shared/fixtures``: a checkpoint saved by the EAC
authors' code and its outputs) prove that mmeac reproduces their model
number for number. Tests that need them carry the ``authors_fixtures``
marker: without the files they are skipped on a developer's machine, but
fail under CI (``CI`` set), so parity can never pass by being skipped.
"""
import os
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The authors' fixtures, next to the checkout as ``../shared/fixtures``.
AUTHORS_FIXTURES = osp.join(REPO, '..', 'shared', 'fixtures')
AUTHORS_CKPT = osp.join(AUTHORS_FIXTURES, 'veca_tiny_official_ckpt.pt')
AUTHORS_OUTPUTS = osp.join(AUTHORS_FIXTURES, 'veca_tiny_official_outputs.pt')


def pytest_configure(config):
    # pytest-xdist (--dist loadfile) would order the files by their number
    # of tests; keep the collection order, which SLOW_FIRST sets
    if hasattr(config.option, 'loadscopereorder'):
        config.option.loadscopereorder = False
    # pytest-xdist: share the cores among the workers (torch would give
    # each worker every core, and two workers would then oversubscribe)
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if workers > 1:
        import torch
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    config.addinivalue_line(
        'markers', 'authors_fixtures: needs ../shared/fixtures (the EAC '
        "authors' checkpoint and outputs); fails under CI when missing")
    # the warm interpreter of the tool runs (tests/_warm.py): one server
    # for the session, started by the first run, stopped at the end
    if not hasattr(config, 'workerinput'):
        import _warm
        folder = _warm.begin()
        config.add_cleanup(lambda: _warm.end(folder))


#: The slowest modules, slowest first (measured with ``--junitxml``; the
#: micro UperNet of ``upernet_run`` is trained by the first module that asks,
#: test_trust_checkpoints.py). pytest-xdist hands out files in collection
#: order (see ``pytest_configure``): starting the long ones first keeps one
#: worker from finishing a long file alone at the end.
SLOW_FIRST = ('test_trust_checkpoints.py', 'test_onnx_export.py',
              'test_seg_e2e.py', 'test_distill.py', 'test_seg_configs.py',
              'test_distributed.py', 'test_tools.py',
              'test_dropin_upstream.py', 'test_exact_resume.py',
              'test_dropin_checks.py', 'test_demo_apis.py',
              'test_trust_tools.py', 'test_analysis_tools.py',
              'test_classification.py', 'test_detection_tools.py',
              'test_eac_vit.py', 'test_compat.py', 'test_detection.py',
              'test_datasets.py', 'test_import_light.py')


def pytest_collection_modifyitems(config, items):
    """Run the slowest modules first (stable: the order within a module and
    among the other modules is kept)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_runtest_setup(item):
    if item.get_closest_marker('authors_fixtures') is None:
        return
    missing = [p for p in (AUTHORS_CKPT, AUTHORS_OUTPUTS) if not osp.isfile(p)]
    if not missing:
        return
    msg = f"the authors' fixtures are missing: {missing}"
    if os.environ.get('CI'):
        pytest.fail(f'{msg} (CI must run the parity tests)', pytrace=False)
    pytest.skip(msg)


# --------------------------------------------------------------------------
# Session-scoped data (one per pytest-xdist worker) and a trained model (one
# per session, shared by the workers).
# They are shared: treat them as read-only, copy before changing anything
# (``tmp_path`` + ``shutil.copytree`` or ``copy_work_dir``).
# --------------------------------------------------------------------------
@pytest.fixture(scope='session')
def builtin_data(tmp_path_factory):
    """``builtin_data(kind, size=64, num_train=6, num_val=2, seed=0)``: the
    root of a built-in dataset (``kind``: ``'ade20k'``, ``'coco'`` or
    ``'imagenet'``, see :mod:`mmeac.testing.synthetic`), made once per
    session for each set of arguments."""
    from mmeac.testing import synthetic
    made = {}

    def get(kind: str, size=64, num_train=6, num_val=2, seed=0) -> str:
        key = (kind, size, num_train, num_val, seed)
        if key not in made:
            out = str(tmp_path_factory.mktemp(kind))
            made[key] = getattr(synthetic, f'make_{kind}')(
                out,
                size=size,
                num_train=num_train,
                num_val=num_val,
                seed=seed)
        return made[key]

    return get


@pytest.fixture(scope='session')
def ade_root(builtin_data) -> str:
    """Built-in ADE20K-layout data: 64 px, 6 training and 2 validation
    images, seed 0."""
    return builtin_data('ade20k')


@pytest.fixture(scope='session')
def upernet_run(tmp_path_factory) -> dict:
    """The micro EAC UperNet demo config trained by ``tools/train.py`` in a
    real process (the CLI smoke test of EAC training) on built-in ADE20K
    data like :func:`ade_root`'s: 4 iterations, seed 0, deterministic,
    checkpoints ``iter_2.pth`` and ``iter_4.pth`` (validation at 4).

    One run per test session: under pytest-xdist the first worker to ask
    trains it (the others wait on a file lock) and every worker reads it
    from the session's shared temporary folder.

    Returns a dict: ``config``, ``work_dir``, ``options`` (the
    ``--cfg-options`` it ran with: rerun with them to get the same bits),
    ``output`` (its stdout + stderr).
    """
    import json

    from _tool_helpers import (UPERNET_MICRO, data_root_options, python_tool,
                               run)
    from filelock import FileLock

    from mmeac.testing import synthetic
    root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        root = root.parent  # the folder of this session's workers
    record = root / 'upernet_run.json'
    with FileLock(f'{record}.lock'):
        if record.is_file():
            return json.loads(record.read_text())
        base = str(root / 'upernet_run')
        data = synthetic.make_ade20k(
            osp.join(base, 'data'), size=64, num_train=6, num_val=2, seed=0)
        work_dir = osp.join(base, 'run')
        options = data_root_options(data, 'randomness.seed=0',
                                    'randomness.deterministic=True')
        proc = run(
            python_tool('train.py', UPERNET_MICRO, '--work-dir', work_dir,
                        '--cfg-options', *options),
            cwd=base)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = dict(
            config=UPERNET_MICRO,
            work_dir=work_dir,
            options=options,
            output=proc.stdout + proc.stderr)
        record.write_text(json.dumps(result))
    return result


@pytest.fixture
def upernet_work_dir(upernet_run, tmp_path) -> str:
    """A copy of :func:`upernet_run`'s work dir in ``tmp_path / 'run'``
    (``last_checkpoint`` points into the copy), free to change."""
    from _tool_helpers import copy_work_dir
    return copy_work_dir(upernet_run['work_dir'], str(tmp_path / 'run'))
