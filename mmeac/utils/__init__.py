"""mmeac.utils: FLOP formulas and counting, benchmark timing / memory
helpers, and core attention maps for the analysis tools."""
from .attention_maps import (core_attention_maps, find_backbone,
                             weighted_core_attention)
from .benchmark import (available_memory_bytes, peak_memory_bytes,
                        resolve_device, summarize_times, synchronize,
                        time_interleaved, time_runs)
from .cpu_malloc import keep_freed_memory, release_freed_memory
from .flops import (attention_pairs, count_flops, count_module_flops,
                    counted_by_category, eac_backbone_flops, fit_power_law,
                    format_flops, register_flop_formulas, swiglu_hidden,
                    vit_backbone_flops)

__all__ = [
    'core_attention_maps', 'find_backbone', 'weighted_core_attention',
    'available_memory_bytes', 'peak_memory_bytes', 'resolve_device',
    'summarize_times', 'synchronize', 'time_interleaved', 'time_runs',
    'keep_freed_memory', 'release_freed_memory', 'attention_pairs',
    'count_flops', 'count_module_flops', 'counted_by_category',
    'eac_backbone_flops', 'fit_power_law', 'format_flops',
    'register_flop_formulas', 'swiglu_hidden', 'vit_backbone_flops'
]
