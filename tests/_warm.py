"""A warm Python for the tool runs of the tests.

A ``python tools/<tool>.py`` started by a test spends 4-5 s of a 2-core
machine importing torch and the OpenMMLab stack before it does a few
seconds of work. The warm server imports that stack once per test session
(:data:`PRELOAD`; not mmeac, whose registration every run must still do
itself) and forks a child for each run. The ``python`` on the tests' PATH
(:func:`tool_env`) is a small client: it hands the server its arguments,
working directory, environment and standard streams, forwards the signals
it gets, and exits as the child exits.

The child is a real, separate process with its own pid, files and exit
status. It runs the script as ``__main__`` with ``sys.argv``,
``sys.path``, standard streams, working directory and environment set as a
fresh interpreter would, and fresh seeds; ``sys.executable`` is the client,
so the processes it starts (torchrun's ranks) are warm too. Killing the
client kills the child.

What only a fresh interpreter proves stays fresh: the tests that check
what an import pulls in, and the ``kill -9`` runs, start
``sys.executable`` themselves. A request the server cannot serve exactly
(an interpreter option other than ``-u``, ``-c``, ``-m``; another value of
a variable read at start-up, see :meth:`Server._plan`) runs in a fresh
interpreter: the client execs it.

This module is imported by the client under ``python -IS``: standard
library only at the top level.
"""
import faulthandler
import json
import os
import os.path as osp
import select
import signal
import socket
import struct
import sys
import time
import warnings

#: The modules the server imports before it forks: what every tool run
#: would import (``mmseg.models`` alone pulls in mmdet's and mmpretrain's).
PRELOAD = ('numpy', 'cv2', 'torch', 'torchvision', 'mmengine.runner',
           'mmcv.transforms', 'mmseg.models', 'mmseg.datasets',
           'mmseg.evaluation', 'mmdet.models', 'mmdet.datasets',
           'mmdet.evaluation', 'mmpretrain.models', 'mmpretrain.datasets',
           'mmpretrain.evaluation')
#: The folder of the session's server (socket, client, log), set by
#: ``conftest.py`` for the test session and inherited by its workers.
DIR_ENV = 'MMEAC_TESTS_WARM_DIR'
#: Variables the child applies itself (``PYTHON``: the tools' scripts'
#: interpreter, not read by Python); other ``PYTHON*`` variables and the
#: prefixes of :data:`STARTUP_PREFIXES` act when an interpreter or a library
#: starts, so a request must have the server's values of them.
PER_RUN = ('PYTHONPATH', 'PYTHONUNBUFFERED', 'PYTHONFAULTHANDLER',
           'PYTHONWARNINGS', 'PYTHON')
STARTUP_PREFIXES = ('PYTHON', 'OMP_', 'MKL_', 'KMP_', 'GOMP_', 'OPENBLAS_',
                    'LD_', 'MALLOC_')
_LEN = struct.Struct('!Q')


def paths(folder: str) -> dict:
    return dict(
        socket=osp.join(folder, 's'),
        client=osp.join(folder, 'bin', 'python'),
        pid=osp.join(folder, 'server.pid'),
        log=osp.join(folder, 'server.log'))


# ------------------------------------------------------------------ client
def client() -> None:
    """The ``python`` of the tests' PATH: run ``sys.argv[1:]`` in a child
    of the warm server, or exec a fresh interpreter."""
    argv = sys.argv[1:]
    real = os.environ['MMEAC_TESTS_REAL_PYTHON']
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(paths(os.environ[DIR_ENV])['socket'])
    fds = [fd for fd in (0, 1, 2) if _is_open(fd)]
    request = json.dumps(
        dict(argv=argv, cwd=os.getcwd(), env=dict(os.environ),
             fds=fds)).encode()
    socket.send_fds(sock, [_LEN.pack(len(request))], fds)
    sock.sendall(request)
    replies = sock.makefile('rb')
    first = replies.readline().split()
    if first == [b'fresh']:
        sock.close()
        os.execv(real, [real, *argv])
    if first[:1] != [b'pid']:
        sys.exit('warm python: no answer from the server')
    pid = int(first[1])

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                   signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)
    last = replies.readline().split()
    if last[:1] != [b'status']:
        sys.exit('warm python: the server went away')
    status = int(last[1])
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    sys.exit(os.waitstatus_to_exitcode(status))


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ server
class Server:
    """Imports :data:`PRELOAD`, then forks a child for every request until
    ``owner`` (the test session) is gone or a SIGTERM comes."""

    def __init__(self, folder: str, owner: int):
        self.owner = owner
        self.start_env = dict(os.environ)
        pythonpath = _pythonpath(os.environ)
        #: sys.path without the script's folder and PYTHONPATH
        self.base_path = [p for p in sys.path[1:] if p not in pythonpath]
        #: the warning filters of the interpreter's start (its defaults;
        #: the server starts without PYTHONWARNINGS)
        self.start_filters = list(warnings.filters)
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(paths(folder)['socket'])
        self.listener.listen(64)  # requests wait here during the imports
        self.children = {}  # child pid -> the client's connection
        self.wake = os.pipe()

    def serve(self) -> None:
        import gc
        import importlib
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except ImportError:  # the run that needs it fails as it would
                pass
        # the imports' objects are never collected (nor touched, so their
        # pages stay shared): a child exits in 0.4 s instead of 1.5 s
        gc.freeze()
        threads = len(os.listdir('/proc/self/task'))
        if threads != 1:
            print(f'warm server: {threads} threads after the imports; '
                  'forking may not be safe')
        sys.stdout.flush()
        sys.stderr.flush()
        os.set_blocking(self.wake[1], False)
        signal.set_wakeup_fd(self.wake[1])
        signal.signal(signal.SIGCHLD, lambda *args: None)
        signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))
        while True:
            conns = {c.fileno(): (p, c) for p, c in self.children.items()}
            ready = select.select([self.listener, self.wake[0], *conns], [],
                                  [], 1.0)[0]
            for fd in ready:
                if fd is self.listener:
                    self._handle(self.listener.accept()[0])
                elif fd == self.wake[0]:
                    os.read(self.wake[0], 4096)
                elif fd in conns and not _recv(conns[fd][1]):
                    _kill(conns[fd][0])  # the client was killed: the child
            self._reap()
            try:
                os.kill(self.owner, 0)
            except ProcessLookupError:
                sys.exit(0)

    def _reap(self) -> None:
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                _send(conn, b'status %d\n' % status)
                conn.close()

    def _handle(self, conn) -> None:
        """Read one request; fork its child or tell the client to go
        fresh."""
        data, fds, _, _ = socket.recv_fds(conn, _LEN.size, 3)
        while len(data) < _LEN.size or \
                len(data) < _LEN.size + _LEN.unpack(data[:_LEN.size])[0]:
            more = conn.recv(1 << 16)
            if not more:  # the client went away before it asked
                break
            data += more
        else:
            request = json.loads(data[_LEN.size:])
            plan = self._plan(request)
            if plan is None:
                _send(conn, b'fresh\n')
            else:
                pid = os.fork()
                if pid == 0:
                    self._become(conn, request, fds, plan)  # no return
                _send(conn, b'pid %d\n' % pid)
                self.children[pid] = conn
        for fd in fds:
            os.close(fd)
        if conn not in self.children.values():
            conn.close()

    def _plan(self, request):
        """``(unbuffered, kind, target, args)`` for ``python [-u] script |
        -c code | -m module [args]``, or None when only a fresh interpreter
        runs it as asked."""
        env, argv = request['env'], request['argv']
        for key in set(env) | set(self.start_env):
            if key.startswith(STARTUP_PREFIXES) and key not in PER_RUN \
                    and env.get(key) != self.start_env.get(key):
                return None
        unbuffered = False
        while argv and argv[0] == '-u':
            unbuffered, argv = True, argv[1:]
        if not argv or argv[0] == '-':
            return None
        if argv[0] in ('-c', '-m'):
            if len(argv) < 2:
                return None
            return unbuffered, argv[0], argv[1], argv[2:]
        if argv[0].startswith('-') or \
                not osp.isfile(osp.join(request['cwd'], argv[0])):
            return None  # the interpreter's own message for a missing script
        return unbuffered, 'script', argv[0], argv[1:]

    def _become(self, conn, request, fds, plan) -> None:
        """In the child: become the process that ``python <argv>`` would
        have started, run it, and exit as the interpreter would."""
        import runpy
        sys.stdout.flush()  # anything of the server's goes to its log
        sys.stderr.flush()
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in self.wake:
            os.close(fd)
        self.listener.close()
        for other in [conn, *self.children.values()]:
            other.close()
        env = request['env']
        unbuffered, kind, target, args = plan
        _streams(request['fds'], fds, unbuffered
                 or bool(env.get('PYTHONUNBUFFERED')))
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(env)
        if env.get('PYTHONFAULTHANDLER'):
            faulthandler.enable()
        else:
            faulthandler.disable()
        self._warning_options(env.get('PYTHONWARNINGS', ''))
        sys.executable = paths(env[DIR_ENV])['client']
        _reseed()
        path = _pythonpath(env) + self.base_path
        try:
            if kind == 'script':
                sys.argv = [target, *args]
                script = osp.join(os.getcwd(), target)  # as Python does
                sys.path[:] = [osp.dirname(osp.realpath(script))] + path
                _run_main(script)
            elif kind == '-m':
                sys.argv = ['-m', *args]  # runpy puts the module's file
                sys.path[:] = [os.getcwd()] + path
                runpy.run_module(target, run_name='__main__', alter_sys=True)
            else:
                sys.argv = ['-c', *args]
                sys.path[:] = [''] + path
                _run_main(None, target)
        except (SystemExit, KeyboardInterrupt):
            raise  # the interpreter's own handling
        except BaseException as e:
            # the traceback a fresh interpreter prints: from the script on
            tb = e.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_filename in (
                    __file__, runpy.__file__, '<frozen runpy>'):
                tb = tb.tb_next
            sys.excepthook(type(e), e.with_traceback(tb), tb)
            sys.exit(1)
        sys.exit(0)  # on to the interpreter's exit: atexit, flushing

    def _warning_options(self, value: str) -> None:
        """Apply ``PYTHONWARNINGS``: its filters go where the interpreter
        puts them, before its defaults and after those the imports added."""
        options = [o for o in value.split(',') if o]
        sys.warnoptions[:] = options
        if not options:
            return
        now, start = list(warnings.filters), self.start_filters
        at = next(i for i in range(len(now)) if now[i:i + len(start)] == start)
        warnings.filters[:] = []
        warnings._processoptions(options)
        warnings.filters[:] = now[:at] + warnings.filters + now[at:]
        warnings._filters_mutated()


def _run_main(path, source=None) -> None:
    """Run a script (``path``) or ``python -c`` code (``source``) as the
    ``__main__`` module."""
    import importlib.machinery
    import types
    main = sys.modules['__main__'] = types.ModuleType('__main__')
    if path is not None:
        main.__file__, main.__cached__ = path, None
        main.__loader__ = importlib.machinery.SourceFileLoader(
            '__main__', path)
        with open(path, 'rb') as f:
            source = f.read()
    exec(compile(source, path or '<string>', 'exec'), main.__dict__)


def _pythonpath(env) -> list:
    """PYTHONPATH's entries as the interpreter puts them on ``sys.path``:
    absolute (from the working directory)."""
    return [
        osp.abspath(p) for p in env.get('PYTHONPATH', '').split(os.pathsep)
        if p
    ]


def _streams(targets, fds, unbuffered: bool) -> None:
    """Make the client's streams (``fds``) the child's 0, 1, 2 and give
    Python new ``sys`` streams over them, buffered as a fresh interpreter
    buffers them."""
    import io
    for target, fd in zip(targets, fds):
        os.dup2(fd, target)
        os.close(fd)
    for target in {0, 1, 2} - set(targets):
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, target)
        os.close(null)
    encoding = sys.stdout.encoding

    def writer(fd, errors):
        raw = io.FileIO(fd, 'w', closefd=False)
        return io.TextIOWrapper(
            raw if unbuffered else io.BufferedWriter(raw),
            encoding,
            errors,
            line_buffering=raw.isatty() or fd == 2,
            write_through=unbuffered)

    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, 'r', closefd=False)), encoding)
    sys.stdout = sys.__stdout__ = writer(1, 'strict')
    sys.stderr = sys.__stderr__ = writer(2, 'backslashreplace')


def _recv(conn) -> bytes:
    try:
        return conn.recv(1)
    except OSError:
        return b''


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _send(conn, data: bytes) -> None:
    try:
        conn.sendall(data)
    except OSError:
        pass


def _reseed() -> None:
    """Fresh seeds, as a fresh interpreter has (``random`` reseeds itself
    after a fork)."""
    import numpy as np
    import torch
    np.random.seed()
    torch.seed()


# ----------------------------------------------------- the session's side
def begin() -> str:
    """Make the session's folder and name it in the environment that the
    workers inherit (``conftest.py``, in the controlling process); the
    server starts on the first :func:`env` call."""
    import tempfile
    folder = tempfile.mkdtemp(prefix='mmeac-warm-')
    if len(paths(folder)['socket']) > 100:  # the limit of a socket's path
        os.rmdir(folder)
        folder = tempfile.mkdtemp(prefix='mmeac-warm-', dir='/tmp')
    with open(osp.join(folder, 'owner'), 'w') as f:
        f.write(str(os.getpid()))
    os.environ[DIR_ENV] = folder
    return folder


def env(base: dict) -> dict:
    """The variables that route ``python`` to the session's server,
    starting it with ``base`` (a tool environment) if nobody has; empty
    outside a session that called :func:`begin`."""
    folder = base.get(DIR_ENV)
    if not folder or not osp.isdir(folder) or \
            os.statvfs(folder).f_flag & os.ST_NOEXEC:
        return {}  # every run fresh (the client could not be executed)
    where = paths(folder)
    from filelock import FileLock
    with FileLock(osp.join(folder, 'lock')):
        if not osp.isfile(where['pid']):
            _start(folder, base)
    return dict(
        MMEAC_TESTS_REAL_PYTHON=sys.executable,
        PYTHON=where['client'],
        PATH=osp.dirname(where['client']) + os.pathsep + base['PATH'])


def _start(folder: str, base: dict) -> None:
    import subprocess
    where = paths(folder)
    os.makedirs(osp.dirname(where['client']), exist_ok=True)
    with open(where['client'], 'w') as f:
        f.write(f'#!{sys.executable} -IS\n'
                'import sys\n'
                f'sys.path.insert(0, {osp.dirname(__file__)!r})\n'
                'import _warm\n'
                '_warm.client()\n')
    os.chmod(where['client'], 0o755)
    with open(osp.join(folder, 'owner')) as f:
        owner = f.read().strip()
    with open(where['log'], 'w') as log:
        server_env = dict(base, MMEAC_TESTS_REAL_PYTHON=sys.executable)
        server_env.pop('PYTHONWARNINGS', None)  # each child applies its own
        proc = subprocess.Popen(
            [sys.executable, __file__, 'serve', folder, owner],
            env=server_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True)
    while not osp.exists(where['socket']):  # bound before the imports
        if proc.poll() is not None:
            with open(where['log']) as f:
                raise RuntimeError(f'the warm server failed:\n{f.read()}')
        time.sleep(0.01)
    with open(where['pid'], 'w') as f:
        f.write(str(proc.pid))


def end(folder: str) -> None:
    """Stop the session's server and remove its folder."""
    import shutil
    where = paths(folder)
    if osp.isfile(where['pid']):
        with open(where['pid']) as f:
            pid = int(f.read())
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):  # a second to go, then SIGKILL
                time.sleep(0.01)
                os.kill(pid, 0)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == '__main__':
    if sys.argv[1:2] == ['serve']:
        Server(sys.argv[2], int(sys.argv[3])).serve()
    else:
        sys.exit(f'usage: {sys.argv[0]} serve FOLDER OWNER_PID')
