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
    config.addinivalue_line(
        'markers', 'authors_fixtures: needs ../shared/fixtures (the EAC '
        "authors' checkpoint and outputs); fails under CI when missing")


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
