"""mixformerv2: the MixFormerV2 single-object tracker (NeurIPS 2023) in PyTorch.

Names are imported on first use, so that the tracker with the onnx runtime
(:mod:`mixformerv2.deploy.onnx`) works where torch is not installed.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import PRESETS, ModelConfig, TrackerConfig, configs_from_official_yaml, get_preset
from .errors import CheckpointError, ConfigError, InputError, MixFormerError

__version__ = "0.1.0"

_LAZY = {
    "MixFormerV2": ".models",
    "TemplateCache": ".models",
    "build_model": ".models",
    "load_checkpoint": ".models",
    "save_checkpoint": ".models",
    "TrackResult": ".tracking",
    "Tracker": ".tracking",
    "open_source": ".tracking",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
