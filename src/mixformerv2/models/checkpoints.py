"""Checkpoint I/O: official ``.pth.tar`` files (state dict under ``net``) and our safetensors format.

Official files are read with ``torch.load(weights_only=True)``: pickled code is never executed.
Our own format is a safetensors file whose metadata embeds the model config; the trainer's
checkpoints (``epoch_*.pt``) load too, with the model config of their run.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import Tensor

from ..config import (PRESETS, ModelConfig, TrackerConfig, config_from_json, config_to_json, get_preset,
                      infer_config_from_shapes, recorded_tracker_settings)
from ..errors import CheckpointError, ConfigError
from ..fileio import atomic_target
from .mixformerv2 import MixFormerV2

FORMAT_TAG = "mixformerv2"
TRAINING_FORMAT = "mixformerv2-train"  # the trainer's checkpoints (epoch_*.pt): model, optimiser, run config
# metadata key: the fast runtimes measured to meet the accuracy bar with these weights
# (benchmarks/runtime_fidelity.py --record), comma-separated; the ``auto`` runtime chooses among them
RUNTIMES_MEETING_BAR = "runtimes_meeting_bar"
# metadata key: tracker settings measured to suit these weights (JSON of TrackerConfig fields, e.g.
# {"hold_below": 0.2}); they replace the official defaults when the tracker is built on the weights
TRACKER_DEFAULTS = "tracker"
_WRAPPER_KEYS = ("net", "state_dict", "model")
_LIST_LIMIT = 8


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, Tensor], ModelConfig | None]:
    """Read the tensors of a checkpoint and, for our own format, its embedded config."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty (0 bytes): {path}")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    state, config = _read_torch(path)
    return _strip_prefix(state), config


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], ModelConfig | None]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}") from None
    architecture = meta.get("architecture", "mixformerv2")
    if architecture != "mixformerv2":
        # e.g. a MixViT teacher saved by a distillation chain: the tensors, but no student config
        return _strip_prefix(tensors), None
    config = config_from_json(meta["config"]) if "config" in meta else None
    return _strip_prefix(tensors), config


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of one of our safetensors files ({} for other files)."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}") from None


def _read_torch(path: Path) -> tuple[dict[str, Tensor], ModelConfig | None]:
    """The state dict of a torch file and, for our training checkpoints, the model config they record."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _loader_detail(str(exc))
        if not any(s in detail for s in _CODE_REFUSALS):
            # e.g. random bytes / a text file: the weights-only unpickler trips over a bad opcode
            raise CheckpointError(
                f"cannot read checkpoint {path} (truncated, corrupt or not a PyTorch file?): {detail}"
            ) from None
        raise CheckpointError(
            f"{path} contains pickled Python objects besides tensors (e.g. an official training checkpoint's "
            "'settings'); refusing to execute pickled code. Re-save only the weights in a trusted environment: "
            "torch.save({'net': torch.load(path, weights_only=False)['net']}, 'weights.pth.tar'). "
            f"Loader message: {detail}"
        ) from None
    except Exception as exc:  # a corrupt pickle stream can raise anything (KeyError, IndexError, struct.error, ...)
        raise CheckpointError(
            f"cannot read checkpoint {path} (truncated, corrupt or not a PyTorch file?): {type(exc).__name__}: {exc}"
        ) from None
    config = None
    if isinstance(obj, Mapping) and obj.get("format") == TRAINING_FORMAT:
        # the architecture cannot be read off the shapes alone (e.g. the number of heads)
        try:
            config = ModelConfig.from_dict(obj["config"]["model"])
        except (ConfigError, KeyError, TypeError):
            pass  # a MixViT teacher's run: its tensors, no student config
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} holds no state dict (expected tensors, optionally under 'net')")
    return dict(obj), config


# What torch's weights-only unpickler says when it meets a class/function reference (pickled code);
# "Unsupported class" is the wording of older torch releases.
_CODE_REFUSALS = ("Unsupported global", "Unsupported class", "GLOBAL")


def _loader_detail(message: str) -> str:
    """The informative line of torch's (long, ANSI-coloured) weights-only error message."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in message.splitlines()]
    lines = [ln for ln in lines if ln]
    for ln in lines:
        if "Unsupported" in ln:
            return ln
    return lines[0] if lines else message


def _strip_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    # DistributedDataParallel checkpoints prefix every key with 'module.'.
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a model with this config, without allocating its weights."""
    with torch.device("meta"):
        model = MixFormerV2(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def matching_presets(shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    return [name for name, p in PRESETS.items() if expected_shapes(p.model) == dict(shapes)]


def check_state_dict(state: Mapping[str, Tensor], config: ModelConfig, source: str = "checkpoint") -> None:
    """Raise :class:`CheckpointError` naming missing/unexpected keys and shape mismatches."""
    want = expected_shapes(config)
    have = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(want) - set(have))
    unexpected = sorted(set(have) - set(want))
    wrong = [f"{k}: checkpoint {have[k]} vs model {want[k]}" for k in want if k in have and have[k] != want[k]]
    if not (missing or unexpected or wrong):
        return
    parts = [f"{source} does not fit the model config {config}"]
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong)):
        if items:
            more = f" ... (+{len(items) - _LIST_LIMIT} more)" if len(items) > _LIST_LIMIT else ""
            parts.append(f"{title} ({len(items)}): " + ", ".join(items[:_LIST_LIMIT]) + more)
    parts.append(_fit_hint(have))
    raise CheckpointError("\n  ".join(parts))


def _fit_hint(shapes: Mapping[str, tuple[int, ...]]) -> str:
    fits = matching_presets(shapes)
    if fits:
        return f"the checkpoint fits preset {' / '.join(fits)} (use --preset {fits[0]})"
    try:
        cfg = infer_config_from_shapes(shapes)
    except ConfigError:
        return "the checkpoint does not look like a MixFormerV2 network at all"
    return f"the checkpoint fits no preset; its shapes suggest {cfg}"


def resolve_config(
    state: Mapping[str, Tensor],
    embedded: ModelConfig | None = None,
    preset: str | None = None,
    config: ModelConfig | None = None,
) -> ModelConfig:
    """Explicit config > preset > embedded config > preset whose shapes match > shapes."""
    if config is not None:
        return config
    if preset is not None:
        return get_preset(preset).model
    if embedded is not None:
        return embedded
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    fits = matching_presets(shapes)
    if fits:
        return PRESETS[fits[0]].model
    return infer_config_from_shapes(shapes)


def load_checkpoint(
    path: str | os.PathLike,
    preset: str | None = None,
    config: ModelConfig | None = None,
    device: str | torch.device = "cpu",
) -> MixFormerV2:
    """Load an official or own checkpoint strictly into a new model in eval mode."""
    metadata = read_metadata(path)
    architecture = metadata.get("architecture", "mixformerv2")
    if architecture != "mixformerv2":
        raise CheckpointError(f"{path} holds a {architecture} model (a distillation teacher), not a MixFormerV2 "
                              "tracker; load it with mixformerv2.models.mixvit.load_teacher")
    state, embedded = read_state_dict(path)
    cfg = resolve_config(state, embedded, preset, config)
    check_state_dict(state, cfg, source=str(path))
    with torch.device("meta"):
        model = MixFormerV2(cfg)
    model.load_state_dict(state, strict=True, assign=True)
    model.box_head.bin_coords = torch.arange(cfg.feat_sz) * model.box_head.stride  # not in the state dict
    model.backbone.pos_embed_s.requires_grad_(False)
    model.backbone.pos_embed_t.requires_grad_(False)
    model.runtimes_meeting_bar = _recorded_runtimes(metadata, path)
    model.tracker_defaults = recorded_tracker_defaults(metadata, path)
    return model.to(device).eval()


def runtimes_meeting_bar(path: str | os.PathLike) -> tuple[str, ...]:
    """The runtimes recorded in ``path``'s metadata as meeting the accuracy bar with its weights
    (() for files without the record: official checkpoints, training outputs)."""
    return _recorded_runtimes(read_metadata(path), path)


def _recorded_runtimes(metadata: Mapping[str, str], path: str | os.PathLike) -> tuple[str, ...]:
    names = tuple(n for n in metadata.get(RUNTIMES_MEETING_BAR, "").split(",") if n)
    unknown = _unknown_runtimes(names)
    if unknown:
        raise CheckpointError(f"{path}: metadata {RUNTIMES_MEETING_BAR!r} names unknown runtimes {unknown}")
    return names


def _unknown_runtimes(names: Sequence[str]) -> list[str]:
    from ..runtimes import RUNTIMES

    return [n for n in names if n not in RUNTIMES or n == "auto"]


def recorded_tracker_defaults(metadata: Mapping[str, str], path: str | os.PathLike) -> dict:
    """The tracker settings recorded in ``metadata`` ({} without the record), checked."""
    text = metadata.get(TRACKER_DEFAULTS)
    if not text:
        return {}
    try:
        settings = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{path}: metadata {TRACKER_DEFAULTS!r} is not JSON ({exc})") from None
    return recorded_tracker_settings(settings, f"{path}: metadata {TRACKER_DEFAULTS!r}")


def record_runtimes_meeting_bar(path: str | os.PathLike, runtimes: Sequence[str]) -> None:
    """Rewrite our safetensors file ``path`` with ``runtimes`` as its record of the fast runtimes
    meeting the accuracy bar (tensors and other metadata unchanged; atomically)."""
    from ..runtimes import RUNTIMES

    unknown = _unknown_runtimes(runtimes)
    if unknown:
        raise ConfigError(f"unknown runtimes {unknown}; available: {', '.join(RUNTIMES[1:])}")
    _rewrite_metadata(path, RUNTIMES_MEETING_BAR, ",".join(runtimes))


def record_tracker_defaults(path: str | os.PathLike, **settings) -> None:
    """Rewrite our safetensors file ``path`` with ``settings`` (TrackerConfig fields, e.g.
    ``hold_below=0.2``) added to the tracker defaults recorded with its weights (a setting given
    again takes the new value; tensors unchanged; atomically)."""
    meta = _own_metadata(path)
    merged = {**recorded_tracker_defaults(meta, path), **settings}
    try:
        config = TrackerConfig(**merged)  # checks names and values
    except TypeError as exc:
        raise ConfigError(f"not tracker settings: {exc}") from None
    config.check_model(config_from_json(meta["config"]), source=str(path))
    _rewrite_metadata(path, TRACKER_DEFAULTS, json.dumps(merged, sort_keys=True))


def _own_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of ``path``, which must be one of our safetensors files (written by save_checkpoint)."""
    meta = read_metadata(path)
    if meta.get("format") != FORMAT_TAG or "config" not in meta or meta.get("architecture", "mixformerv2") != "mixformerv2":
        raise CheckpointError(f"{path} is not a mixformerv2 safetensors file; load it and write it with save_checkpoint first")
    return meta


def _rewrite_metadata(path: str | os.PathLike, key: str, value: str) -> None:
    from safetensors.torch import load_file, save_file

    meta = _own_metadata(path)
    tensors = load_file(str(path))
    meta[key] = value
    with atomic_target(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike, overwrite: bool = False, **metadata: str) -> Path:
    """Write weights + config as safetensors, atomically (temp file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.exists() and not overwrite:
        raise CheckpointError(f"{path} exists; refusing to overwrite (pass overwrite=True)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT_TAG, "config": config_to_json(model.config),
            "architecture": getattr(model, "architecture", "mixformerv2"), **metadata}
    with atomic_target(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def describe_checkpoint(path: str | os.PathLike) -> dict:
    """Summary for ``mixformerv2 info``: preset, sizes, parameter count."""
    state, embedded = read_state_dict(path)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    cfg = resolve_config(state, embedded)
    check_state_dict(state, cfg, source=str(path))
    fits = matching_presets(shapes)
    return {
        "path": str(path),
        "format": "mixformerv2 safetensors" if embedded is not None else "official / plain state dict",
        "preset": fits[0] if fits else "custom",
        "config": cfg,
        "parameters": sum(v.numel() for v in state.values()),
        "tensors": len(state),
        "dtype": str(next(iter(state.values())).dtype).replace("torch.", ""),
    }
