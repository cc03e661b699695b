"""mixformerv2: the MixFormerV2 single-object tracker (NeurIPS 2023) in PyTorch."""

from .config import PRESETS, ModelConfig, TrackerConfig, configs_from_official_yaml, get_preset
from .errors import CheckpointError, ConfigError, InputError, MixFormerError
from .models import MixFormerV2, TemplateCache, build_model, load_checkpoint, save_checkpoint
from .tracking import TrackResult, Tracker, open_source

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "CheckpointError",
    "ConfigError",
    "InputError",
    "MixFormerError",
    "MixFormerV2",
    "ModelConfig",
    "TemplateCache",
    "TrackResult",
    "Tracker",
    "TrackerConfig",
    "build_model",
    "configs_from_official_yaml",
    "get_preset",
    "load_checkpoint",
    "open_source",
    "save_checkpoint",
]
