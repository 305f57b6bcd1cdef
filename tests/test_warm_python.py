"""The tests' warm ``python`` (``tests/_warm.py``) behaves as a fresh
interpreter would: the same program gives the same output, exit status and
signals in both, and what the warm one cannot serve exactly it runs fresh.
"""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
from _tool_helpers import tool_env
from _warm import DIR_ENV

PROBE = r'''
import json, os, sys, warnings
print(json.dumps(dict(
    argv=sys.argv, path0=sys.path[0], cwd=os.getcwd(),
    file=globals().get('__file__'), name=__name__,
    var=os.environ.get('PROBE_VAR'), stdin=sys.stdin.read(),
    pythonpath=[p for p in sys.path if p in map(
        os.path.abspath, os.environ['PYTHONPATH'].split(os.pathsep))],
    mmeac='mmeac' in sys.modules, buffered=not sys.stdout.write_through,
    warnoptions=sys.warnoptions)))
warnings.warn('a warning')
print('to stderr', file=sys.stderr)
sys.exit(int(os.environ.get('PROBE_EXIT', '0')))
'''


@pytest.fixture(scope='module')
def pythons():
    """(warm, fresh): the two interpreters and their environments."""
    warm = tool_env()
    if os.statvfs(os.environ[DIR_ENV]).f_flag & os.ST_NOEXEC:
        pytest.skip('the temporary folder is noexec: every run is fresh')
    assert warm['PYTHON'] != sys.executable, 'conftest.py starts a session'
    return warm, tool_env(fresh=True)


def _run(env, *args, cwd, extra=None, stdin=''):
    return subprocess.run([env['PYTHON'], *args],
                          env=dict(env, **(extra or {})),
                          cwd=cwd,
                          input=stdin,
                          capture_output=True,
                          text=True,
                          timeout=120)


def _both(pythons, *args, **kwargs):
    return [_run(env, *args, **kwargs) for env in pythons]


def test_a_script_sees_what_it_would_in_a_fresh_interpreter(pythons, tmp_path):
    (tmp_path / 'probe.py').write_text(PROBE)
    (tmp_path / 'sub').mkdir()
    extra = dict(PROBE_VAR='x', PROBE_EXIT='3')
    warm, fresh = _both(
        pythons,
        '../probe.py',
        'a b',
        '--c',
        cwd=str(tmp_path / 'sub'),
        extra=extra,
        stdin='in')
    assert (warm.returncode, fresh.returncode) == (3, 3)
    assert warm.stderr == fresh.stderr
    line = PROBE.splitlines().index("warnings.warn('a warning')") + 1
    assert f'probe.py:{line}: UserWarning: a warning' in warm.stderr
    seen = json.loads(warm.stdout)
    assert seen == json.loads(fresh.stdout)
    assert seen['argv'] == ['../probe.py', 'a b', '--c']
    assert seen['path0'] == str(tmp_path)
    assert osp.realpath(seen['file']) == str(tmp_path / 'probe.py')
    assert (seen['var'], seen['stdin'], seen['name']) == ('x', 'in',
                                                          '__main__')
    assert seen['mmeac'] is False  # each run registers mmeac itself
    assert seen['pythonpath']

    # -u, -c, -m and PYTHONWARNINGS as well
    for args, extra in ((['-u', '../probe.py'], None),
                        (['-c', PROBE, 'x'], dict(PYTHONWARNINGS='ignore')),
                        (['-m', 'probe', 'y'], dict(PYTHONPATH='..'))):
        warm, fresh = _both(
            pythons, *args, cwd=str(tmp_path / 'sub'), extra=extra)
        assert warm.returncode == fresh.returncode == 0, warm.stderr
        seen = json.loads(warm.stdout)
        assert seen == json.loads(fresh.stdout)
        assert seen['pythonpath'] and warm.stderr == fresh.stderr


def test_errors_and_exits_as_a_fresh_interpreter(pythons, tmp_path):
    for args in (['-c', 'import sys; sys.exit("bad input")'
                  ], ['-c', 'def f():\n    raise ValueError(1)\nf()'
                      ], ['no_such_script.py'],
                 ['-I', '-c', 'import sys; sys.exit(3 + sys.flags.isolated)']):
        warm, fresh = _both(pythons, *args, cwd=str(tmp_path))
        assert warm.returncode == fresh.returncode != 0, args
        assert warm.stderr == fresh.stderr, args
    assert warm.returncode == 4  # -I: served fresh


def test_signals_reach_the_child_and_come_back(pythons, tmp_path):
    warm = pythons[0]
    # killed by a signal: the client dies of it too
    proc = _run(
        warm,
        '-c',
        'import os, signal; os.kill(os.getpid(), signal.SIGKILL)',
        cwd=str(tmp_path))
    assert proc.returncode == -signal.SIGKILL
    pid_file = tmp_path / 'pid'
    sleeper = f'import os, time; open({str(pid_file)!r}, "w").write(' \
        'str(os.getpid())); time.sleep(60)'
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pid_file.unlink(missing_ok=True)
        client = subprocess.Popen([warm['PYTHON'], '-c', sleeper], env=warm)
        deadline = time.time() + 60
        while not pid_file.is_file() or not pid_file.read_text():
            assert time.time() < deadline and client.poll() is None
            time.sleep(0.02)
        child = int(pid_file.read_text())
        assert child != client.pid  # the server's child, not the client
        client.send_signal(sig)  # SIGTERM forwarded; SIGKILL: server kills
        assert client.wait(60) == -sig
        while time.time() < deadline and _alive(child):
            time.sleep(0.02)
        assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def test_every_run_has_fresh_seeds(pythons, tmp_path):
    code = 'import random, numpy, torch; print(random.random(), ' \
        'numpy.random.rand(), torch.rand(1).item())'
    first, second = (
        _run(pythons[0], '-c', code, cwd=str(tmp_path)) for _ in range(2))
    a, b = first.stdout.split(), second.stdout.split()
    assert len(a) == len(b) == 3
    assert all(x != y for x, y in zip(a, b))
