"""Writing a file all at once or not at all, and never over a user's.

Every file mmeac writes for a user (checkpoints, ``last_checkpoint``, test
results, ONNX models, drawings, converted weights) goes through
:func:`atomic_path`, and a report of several files through
:func:`write_files`: a reader never sees half a file, a crash leaves the old
file or the new one, and a failed write leaves nothing behind. Files a tool
names itself in a folder the user gives are checked with
:func:`refuse_existing` before any work starts.
"""
import contextlib
import os
import os.path as osp
import secrets
import shutil
import tempfile
from typing import Callable, Dict, Iterable, Iterator, List

__all__ = [
    'TMP_PREFIX', 'atomic_path', 'write_text_atomic', 'write_files',
    'refuse_existing', 'fsync_dir'
]

#: Prefix of the temporary files :func:`atomic_path` creates (and removes).
TMP_PREFIX = '.mmeac-tmp-'


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = '') -> Iterator[str]:
    """Yield a new temporary file next to ``path`` to write instead.

    The folder of ``path`` is made if missing. When the block ends without
    error the temporary file is flushed to disk and renamed onto ``path``;
    on any error it is removed, with the folders made for it, and ``path``
    is left as it was. The file gets the mode ``open()`` would give (0o666
    less the umask).

    Args:
        path (str): The file to write.
        suffix (str): The temporary name's suffix, for writers that take the
            format from the name (``mmengine.dump``, ``mmcv.imwrite``).
    """
    folder = osp.dirname(osp.abspath(path))
    made = _make_folder(folder)
    tmp = osp.join(
        folder, f'{TMP_PREFIX}{osp.basename(path)}.{os.getpid()}.'
        f'{secrets.token_hex(4)}{suffix}')
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        _remove_empty(made)
        raise
    fsync_dir(folder)


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp, open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)


def write_files(folder: str, writers: Dict[str, Callable[[str],
                                                         None]]) -> List[str]:
    """Write a report of several files into ``folder``, each whole.

    Every ``writers[name](path)`` writes its file into a temporary folder
    inside ``folder``; only when all of them succeeded are the files flushed
    and renamed into place. On an error nothing is moved, the temporary
    folder is removed, and so are the folders made for it.

    Args:
        folder (str): Where the files go (made if missing).
        writers (dict): File name -> a function that writes it to the path
            it is given.

    Returns:
        list[str]: The paths written.
    """
    folder = osp.abspath(folder)
    made = _make_folder(folder)
    tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=folder)
    try:
        for name, write in writers.items():
            write(osp.join(tmp, name))
        for name in writers:
            fd = os.open(osp.join(tmp, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(made)
        raise
    paths = [osp.join(folder, name) for name in writers]
    try:
        for name, path in zip(writers, paths):
            os.replace(osp.join(tmp, name), path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fsync_dir(folder)
    return paths


def refuse_existing(paths: Iterable[str], overwrite: bool = False) -> None:
    """Stop before a tool would replace a file that is already there.

    Args:
        paths (Iterable[str]): The files a tool is about to write.
        overwrite (bool): Whether existing files may be replaced (the
            tools' ``--overwrite``). A folder in the way is refused anyway.

    Raises:
        FileExistsError: Naming the first path in the way and how to allow
            it, in one line.
    """
    for path in paths:
        if osp.isdir(path):
            raise FileExistsError(f'{path} is a folder, where the output '
                                  'file would go')
        if osp.lexists(path) and not overwrite:
            raise FileExistsError(
                f'{path} exists; pass --overwrite to replace it')


def _make_folder(folder: str) -> List[str]:
    """Make ``folder``; return the folders made, innermost first."""
    made = []
    parent = folder
    while not osp.isdir(parent):
        made.append(parent)
        parent = osp.dirname(parent)
    os.makedirs(folder, exist_ok=True)
    return made


def _remove_empty(made: List[str]) -> None:
    """Remove the folders :func:`_make_folder` made, while empty."""
    for made_dir in made:
        try:
            os.rmdir(made_dir)
        except OSError:
            return


def fsync_dir(directory: str) -> None:
    """Flush a directory entry (a rename) to disk where the OS allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
