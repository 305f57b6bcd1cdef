"""Writing a file all at once or not at all.

Every file mmeac writes for a user (checkpoints, ``last_checkpoint``, test
results, ONNX models, drawings, converted weights, reports) goes through
:func:`atomic_path`: a reader never sees half a file, a crash leaves the old
file or the new one, and a failed write leaves nothing behind.
"""
import contextlib
import os
import os.path as osp
import secrets
from typing import Iterator

__all__ = ['TMP_PREFIX', 'atomic_path', 'write_text_atomic', 'fsync_dir']

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
    made = []  # the folders made here, innermost first
    parent = folder
    while not osp.isdir(parent):
        made.append(parent)
        parent = osp.dirname(parent)
    os.makedirs(folder, exist_ok=True)
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
        for made_dir in made:
            try:
                os.rmdir(made_dir)  # only if still empty
            except OSError:
                break
        raise
    fsync_dir(folder)


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp, open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)


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
