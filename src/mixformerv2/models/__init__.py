"""Networks: MixFormerV2 student/online model and checkpoint I/O."""

from .checkpoints import describe_checkpoint, load_checkpoint, read_state_dict, save_checkpoint
from .mixformerv2 import MixFormerV2, TemplateCache, build_model

__all__ = [
    "MixFormerV2",
    "TemplateCache",
    "build_model",
    "describe_checkpoint",
    "load_checkpoint",
    "read_state_dict",
    "save_checkpoint",
]
