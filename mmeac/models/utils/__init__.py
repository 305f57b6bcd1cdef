"""Model utilities: drop-in checks."""
from .dropin_checks import (DropinError, check_backbone_consumer,
                            check_detector_strides, find_owner,
                            neck_settings_for)

__all__ = [
    'DropinError', 'find_owner', 'check_detector_strides',
    'check_backbone_consumer', 'neck_settings_for'
]
