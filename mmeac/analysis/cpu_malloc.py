"""Keep large freed CPU blocks inside the process (glibc malloc).

glibc serves every allocation above its mmap threshold (adjusted at run
time, at most 32 MiB by default) with fresh pages from ``mmap`` and gives
them back to the kernel on ``free``; the next allocation of that size
page-faults all of its pages again. The activations of a 1024 px ViT-B step
on the CPU are 12-70 MB each (the SwiGLU hidden layer of EAC-B is 68 MB), so
every layer re-faults them, which on a virtual machine costs several
percent of a forward and makes repeated timings vary by tens of percent.

:func:`keep_freed_memory` raises the mmap and trim thresholds so that such
blocks stay in the heap and are reused. The benchmarks call it (both sides
of every comparison run in the same process, so both benefit alike). The
threshold stays below the size of mmseg ViT's attention matrices at 1024 px
(about 0.8 GB each), which are still mapped and returned one by one;
:func:`release_freed_memory` hands the kept heap back between benchmark
cases.
"""
import ctypes
import ctypes.util
import sys

__all__ = ['keep_freed_memory', 'release_freed_memory']

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _glibc():
    """The C library if it is glibc, else None."""
    if not sys.platform.startswith('linux'):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        libc.gnu_get_libc_version  # only glibc honours these settings
        libc.mallopt
        libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory(threshold_bytes: int = 256 << 20) -> bool:
    """Serve allocations up to ``threshold_bytes`` from the reusable heap.

    Args:
        threshold_bytes (int): New mmap threshold; the trim threshold is set
            to twice it (capped at ``2**31 - 1``). Defaults to 256 MiB.

    Returns:
        bool: True if glibc accepted both settings, False where there is no
        glibc ``mallopt`` (other platforms or C libraries); nothing changes
        then.
    """
    if not 0 < threshold_bytes < 2**31:
        raise ValueError('threshold_bytes must be in (0, 2**31), got '
                         f'{threshold_bytes}')
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    trim = min(2 * threshold_bytes, 2**31 - 1)
    return (mallopt(_M_MMAP_THRESHOLD, threshold_bytes) == 1
            and mallopt(_M_TRIM_THRESHOLD, trim) == 1)


def release_freed_memory() -> bool:
    """Return the heap's free memory to the kernel (``malloc_trim(0)``).

    Returns:
        bool: False where there is no glibc, else True.
    """
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim(0)
    return True
