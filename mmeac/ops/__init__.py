"""Custom operators of mmeac."""
from .core_periphery_attention import (core_periphery_attention,
                                       core_periphery_attention_reference,
                                       core_periphery_mask,
                                       sdpa_pair_attention)
from .onnx import onnx_export_mode, onnx_translation_table

__all__ = [
    'core_periphery_attention', 'core_periphery_attention_reference',
    'core_periphery_mask', 'sdpa_pair_attention', 'onnx_export_mode',
    'onnx_translation_table'
]
