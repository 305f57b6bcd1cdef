"""Timing and peak-memory helpers for the benchmarks.

Timing
    On CUDA each run is bracketed by CUDA events and synchronised
    (``torch.cuda.Event(enable_timing=True)``); on CPU by
    ``time.perf_counter`` (CPU kernels are synchronous). Results are the
    per-run seconds after ``warmup`` untimed runs; report the median.

Peak memory
    On CUDA: ``torch.cuda.max_memory_allocated`` after
    ``reset_peak_memory_stats``, minus what was allocated before the run.
    On CPU: the run is traced by ``torch.profiler`` with
    ``profile_memory=True``, which records every allocation and free of
    PyTorch's CPU allocator; the peak is the maximum of their running sum.
    Both therefore measure the same thing: the largest amount of tensor
    memory that the measured step holds *on top of* what existed before it
    (parameters, inputs, cached tables). Process RSS is not used, since it
    mixes in the interpreter, libraries and allocator caching.
"""
import contextlib
import os
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch

__all__ = [
    'resolve_device', 'synchronize', 'time_runs', 'time_interleaved',
    'peak_memory_bytes', 'summarize_times', 'available_memory_bytes'
]


def resolve_device(device: Union[str, torch.device] = 'auto') -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU.

    Raises:
        ValueError: If CUDA is requested but not available.
    """
    if str(device) == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError('device cuda requested but CUDA is not available')
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_runs(fn: Callable[[], object],
              device: torch.device,
              repeats: int = 5,
              warmup: int = 1,
              max_seconds: Optional[float] = None) -> List[float]:
    """Seconds of each of ``repeats`` timed calls of ``fn``.

    Args:
        fn (callable): One measured step (e.g. a forward).
        device (torch.device): Where ``fn`` runs.
        repeats (int): Timed runs (at least 1).
        warmup (int): Untimed runs before them.
        max_seconds (float, optional): Stop repeating once the timed runs
            took this long in total (at least one run is always timed),
            so that very slow cases (dense attention at 2048 px on a CPU)
            stay bounded.
    """
    if repeats < 1:
        raise ValueError(f'repeats must be >= 1, got {repeats}')
    for _ in range(max(warmup, 0)):
        fn()
    synchronize(device)
    times: List[float] = []
    for _ in range(repeats):
        times.append(_timed_call(fn, device))
        if max_seconds is not None and sum(times) >= max_seconds:
            break
    return times


def _timed_call(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call of ``fn`` (CUDA events on GPU)."""
    if device.type == 'cuda':
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / 1000.0
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_interleaved(
        fns: Dict[str, Callable[[], object]],
        device: torch.device,
        repeats: int = 5,
        warmup: int = 1,
        max_seconds: Optional[float] = None) -> Dict[str, List[float]]:
    """Time several steps round-robin, for ratios between them.

    Each round times every step once, starting from a different one in
    turn, so that slow drifts of the machine (frequency, other load, the
    allocator's state) fall on all steps alike instead of on whichever ran
    last. This is what the side-by-side ratios are computed from.

    Args:
        fns (dict): Name -> one measured step.
        device (torch.device): Where the steps run.
        repeats (int): Rounds (at least 1).
        warmup (int): Untimed rounds before them.
        max_seconds (float, optional): Stop once the slowest step's timed
            runs took this long in total (one round is always timed).

    Returns:
        dict: Name -> seconds of each timed run.
    """
    if repeats < 1:
        raise ValueError(f'repeats must be >= 1, got {repeats}')
    if not fns:
        raise ValueError('time_interleaved needs at least one step')
    names = list(fns)
    for _ in range(max(warmup, 0)):
        for name in names:
            fns[name]()
    synchronize(device)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_timed_call(fns[name], device))
        if max_seconds is not None and max(
                sum(t) for t in times.values()) >= max_seconds:
            break
    return times


def summarize_times(times: Sequence[float]) -> Dict[str, float]:
    """Median, mean, min, max and standard deviation, in seconds."""
    times = list(times)
    return dict(
        median=statistics.median(times),
        mean=statistics.fmean(times),
        min=min(times),
        max=max(times),
        std=statistics.pstdev(times) if len(times) > 1 else 0.0,
        runs=len(times))


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence file descriptor 2 (the profiler backend's start/stop
    banners are printed by native code); Python errors are unaffected."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2
        yield
        return
    try:
        with open(os.devnull, 'w') as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cpu_peak_bytes(fn: Callable[[], object]) -> int:
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_native_stderr():
        prof.start()
    try:
        fn()
    finally:
        with _quiet_native_stderr():
            prof.stop()
    allocs = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.tag == _EventType.Allocation:
            fields = node.extra_fields
            if fields.device.type == 'cpu':
                allocs.append((node.start_time_ns, fields.alloc_size))
    allocs.sort(key=lambda a: a[0])
    live = peak = 0
    for _, size in allocs:
        live += size
        peak = max(peak, live)
    return peak


def peak_memory_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak tensor memory (bytes) that one call of ``fn`` adds on ``device``.

    See the module docstring for what is measured on CPU and CUDA.
    """
    if device.type == 'cuda':
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    return _cpu_peak_bytes(fn)


def available_memory_bytes(device: torch.device) -> int:
    """Free memory usable by a run: CUDA free memory or MemAvailable."""
    if device.type == 'cuda':
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if hasattr(os, 'sysconf'):
        try:
            return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
        except (ValueError, OSError):
            pass
    return 2**63 - 1
