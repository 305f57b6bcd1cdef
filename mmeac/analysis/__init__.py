"""mmeac.analysis: helpers of the analysis tools (``tools/analysis_tools``).

Benchmark timing and memory (:mod:`.benchmark`), glibc malloc tuning
(:mod:`.cpu_malloc`), model builders for the benchmarks
(:mod:`.analysis_models`) and core attention maps (:mod:`.attention_maps`).
Not imported by ``import mmeac``. FLOP formulas live next to the op, in
:mod:`mmeac.ops.flops`.
"""
from .attention_maps import (core_attention_maps, find_backbone,
                             weighted_core_attention)
from .benchmark import (available_memory_bytes, peak_memory_bytes,
                        resolve_device, summarize_times, synchronize,
                        time_interleaved, time_runs)
from .cpu_malloc import keep_freed_memory, release_freed_memory

__all__ = [
    'core_attention_maps', 'find_backbone', 'weighted_core_attention',
    'available_memory_bytes', 'peak_memory_bytes', 'resolve_device',
    'summarize_times', 'synchronize', 'time_interleaved', 'time_runs',
    'keep_freed_memory', 'release_freed_memory'
]
