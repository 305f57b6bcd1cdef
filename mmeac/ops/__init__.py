"""Custom operators of mmeac."""
from .core_periphery_attention import (COMPILED_KERNEL_ERROR,
                                       HAS_COMPILED_KERNEL,
                                       core_periphery_attention,
                                       core_periphery_attention_reference,
                                       core_periphery_mask)
from .onnx import onnx_export_mode, onnx_translation_table

__all__ = [
    'core_periphery_attention', 'core_periphery_attention_reference',
    'core_periphery_mask', 'HAS_COMPILED_KERNEL', 'COMPILED_KERNEL_ERROR',
    'onnx_export_mode', 'onnx_translation_table'
]
