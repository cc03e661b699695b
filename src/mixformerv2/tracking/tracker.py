"""The MixFormerV2 tracker: crops, network step, map-back and the online-template policy.

Behaviour is that of the official ``MixFormerOnline`` tracker, except that templates are
encoded once (at init and at template updates) instead of on every frame. The network runs in a
:mod:`runtime <mixformerv2.runtimes>` (torch fp32 / bf16, onnxruntime fp32 / int8); the tracker
itself works on numpy arrays, so with the onnxruntime runtimes it runs without torch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..config import PRESETS, ModelConfig, TrackerConfig
from ..errors import ConfigError, InputError
from ..geometry import (CropInfo, align_to, clip_box, crop_around, limit_scale_change, map_back, normalize_frame,
                        validate_box)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
_STD = np.array(IMAGENET_STD, dtype=np.float32).reshape(1, 3, 1, 1)


@dataclass(frozen=True)
class TrackResult:
    """What the tracker knows about one target after one frame."""

    box: tuple[float, float, float, float]  # x, y, w, h in image pixels (top-left corner)
    score: float  # confidence in [0, 1]; NaN for a model without score head
    score_logit: float = math.nan
    pred_box_norm: tuple[float, float, float, float] = (math.nan,) * 4  # cx, cy, w, h / search size
    crop: CropInfo | None = None  # the search crop of this frame
    template_updated: bool = False  # a new best-scoring template candidate was cropped
    online_template_replaced: bool = False  # the online template was swapped after this frame
    online_template_frame: int = 0  # frame whose crop is the online template from the next frame on
    held: bool = False  # the score was below ``TrackerConfig.hold_below``: the last box was kept


@dataclass
class _Target:
    state: list[float]
    template: np.ndarray  # normalised initial template (1, 3, T, T) float32
    online_frame: int = 0
    best: np.ndarray | None = None  # best-scoring candidate of the current interval (None = initial)
    best_frame: int = 0
    max_score: float = -1.0


def default_tracker_config(model_config: ModelConfig, recorded: Mapping[str, Any] | None = None) -> TrackerConfig:
    """The preset's tracker settings when the architecture is a preset's, else the official defaults;
    then the settings ``recorded`` with the weights (``models.checkpoints.TRACKER_DEFAULTS``)."""
    config = next((p.tracker for p in PRESETS.values() if p.model == model_config), TrackerConfig())
    return config.replace(**recorded) if recorded else config


class Tracker:
    """Tracks one or several targets through a stream of RGB frames.

    OpenCV contract: ``init(frame, (x, y, w, h))`` then ``ok, box = update(frame)``.
    Richer: ``track(frame) -> TrackResult``. Several targets: ``init_targets`` /
    ``track_targets`` run one batched network step per frame for all targets.

    ``model``: a :class:`~mixformerv2.models.MixFormerV2` (run by the ``runtime`` named, default
    ``auto``) or a ready runtime object (e.g. :class:`~mixformerv2.deploy.onnx.OnnxRuntime`).
    """

    def __init__(
        self,
        model: Any,
        config: TrackerConfig | None = None,
        device: Any = None,
        dataset: str | None = None,
        runtime: str | None = None,
    ) -> None:
        if hasattr(model, "encode") and hasattr(model, "step"):  # a runtime already
            if runtime is not None and runtime != model.name:
                raise InputError(f"runtime {runtime!r} given for a ready {model.name!r} runtime")
            self.runtime = model
            self.model = getattr(model, "model", None)
        else:
            from ..runtimes import make_runtime

            self.model = model
            self.runtime = make_runtime(model, runtime, device=device)
        self.device = getattr(self.runtime, "device", "cpu")
        self.model_config: ModelConfig = self.runtime.config
        recorded = getattr(self.model, "tracker_defaults", None) or getattr(self.runtime, "tracker_defaults", None)
        config = config or default_tracker_config(self.model_config, recorded)
        self.config = config.for_dataset(dataset) if dataset else config
        self._targets: list[_Target] = []
        self._cache: Any = None
        self.frame_id = 0
        # per-frame search buffers, reused while the number of targets stays the same
        self._search_u8: np.ndarray | None = None  # (N, S, S, 3) crops
        self._search: np.ndarray | None = None  # (N, search_channels, S, S) normalised network input
        # motion input: the previous frame (a copy: callers may reuse their frame buffer) and its crops
        self._previous: np.ndarray | None = None
        self._previous_u8: np.ndarray | None = None

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        preset: str | None = None,
        device: Any = "cpu",
        config: TrackerConfig | None = None,
        dataset: str | None = None,
        runtime: str | None = None,
    ) -> "Tracker":
        """A tracker on a checkpoint (official .pth.tar or our .safetensors), or on the folder of
        an ONNX export (``mixformerv2 export [--int8]``; runtime onnx or int8, no torch needed)."""
        from pathlib import Path

        if Path(path).is_dir():
            from ..deploy.onnx import META_FILE, OnnxRuntime

            if not (Path(path) / META_FILE).is_file():
                raise InputError(f"{path} is a folder but not an ONNX export (no {META_FILE})")
            if preset is not None:
                raise InputError("--preset does not apply to an ONNX export (its config is in the export)")
            loaded = OnnxRuntime.load(path)
            if runtime not in (None, "auto", loaded.name):
                raise InputError(f"{path} is an ONNX export: it runs with the {loaded.name} runtime, not {runtime!r}")
            return cls(loaded, config=config, dataset=dataset)
        from ..models.checkpoints import load_checkpoint

        model = load_checkpoint(path, preset=preset, device=device)
        return cls(model, config=config, device=device, dataset=dataset, runtime=runtime)

    @property
    def config(self) -> TrackerConfig:
        return self._config

    @config.setter
    def config(self, value: TrackerConfig) -> None:
        value.check_model(self.model_config)
        self._config = value

    # -- OpenCV-style single-target API -----------------------------------------------------------
    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        self.init_targets(frame, [box])

    def update(self, frame: np.ndarray) -> tuple[bool, tuple[float, float, float, float]]:
        """OpenCV contract. ``ok`` is True whenever a box was produced (MixFormerV2 always
        outputs one); the confidence is in :meth:`track`'s ``score``."""
        result = self.track(frame)
        return True, result.box

    def track(self, frame: np.ndarray) -> TrackResult:
        if not self._targets:
            raise RuntimeError("call init() / init_targets() before tracking")
        if len(self._targets) != 1:
            raise RuntimeError(f"track() follows one target but {len(self._targets)} are set; use track_targets()")
        return self.track_targets(frame)[0]

    # -- multi-target API ----------------------------------------------------------------------------
    @property
    def num_targets(self) -> int:
        return len(self._targets)

    def init_targets(self, frame: np.ndarray, boxes: Sequence[Sequence[float]]) -> None:
        frame = normalize_frame(frame)
        if len(boxes) == 0:
            raise InputError("no target box given")
        checked = [list(validate_box(b, frame.shape)) for b in boxes]
        self._targets = []
        for box in checked:
            template = self._template_crop(frame, box)
            self._targets.append(_Target(state=box, template=template))
        self._cache = self._encode([(t.template, t.template) for t in self._targets])
        self.frame_id = 0
        self._keep_previous(frame)

    def track_targets(self, frame: np.ndarray) -> list[TrackResult]:
        if not self._targets:
            raise RuntimeError("call init() / init_targets() before tracking")
        frame = normalize_frame(frame)
        self.frame_id += 1
        cfg, mcfg = self.config, self.model_config
        n, size = len(self._targets), mcfg.search_size
        if self._search is None or len(self._search) != n:
            self._search_u8 = np.empty((n, size, size, 3), np.uint8)
            self._search = np.empty((n, mcfg.search_channels, size, size), np.float32)
            self._previous_u8 = np.empty_like(self._search_u8) if mcfg.motion_input else None
        crops = [crop_around(frame, t.state, cfg.search_factor, size, out=self._search_u8[i])
                 for i, t in enumerate(self._targets)]
        rgb = self._normalise(self._search_u8, out=self._search[:, :3])
        if mcfg.motion_input:  # minus the previous frame cropped in the same window, camera motion undone
            for i, t in enumerate(self._targets):
                crop_around(self._previous, t.state, cfg.search_factor, size, out=self._previous_u8[i])
                self._previous_u8[i] = align_to(self._previous_u8[i], self._search_u8[i])
            difference = self._normalise(self._previous_u8, out=self._search[:, 3:])
            np.subtract(rgb, difference, out=difference)
            self._keep_previous(frame)
        boxes_norm, logits = self.runtime.step(self._search, self._cache)  # (N, 4) normalised cxcywh, float32
        scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64))) if logits is not None else None
        height, width = frame.shape[:2]
        results, reencode = [], []
        for i, (target, (_, info)) in enumerate(zip(self._targets, crops)):
            # float32 arithmetic as the official tracker, then Python floats
            box_px = (boxes_norm[i] * np.float32(mcfg.search_size) / np.float32(info.resize_factor)).tolist()
            mapped = map_back(box_px, target.state, mcfg.search_size, info.resize_factor)
            score = float(scores[i]) if scores is not None else math.nan
            held = cfg.hold_below is not None and score < cfg.hold_below  # False for NaN (no score head)
            if not held:
                if cfg.max_scale_change is not None:
                    mapped = limit_scale_change(mapped, target.state, cfg.max_scale_change)
                target.state = clip_box(mapped, height, width, margin=cfg.clip_margin)
            updated = replaced = False
            if scores is not None:
                target.max_score *= cfg.max_score_decay
                if score > cfg.score_threshold and score > target.max_score:
                    target.best = self._template_crop(frame, target.state)
                    target.best_frame, target.max_score, updated = self.frame_id, score, True
                if self.frame_id % cfg.update_interval == 0:
                    new_frame = target.best_frame if target.best is not None else 0
                    if target.best is not None or target.online_frame != 0:
                        reencode.append((i, target.best if target.best is not None else target.template))
                    target.online_frame, replaced = new_frame, True
                    target.best, target.best_frame, target.max_score = None, 0, -1.0
            results.append(
                TrackResult(
                    box=tuple(target.state),
                    score=score,
                    score_logit=float(logits[i]) if logits is not None else math.nan,
                    pred_box_norm=tuple(boxes_norm[i].tolist()),
                    crop=info,
                    template_updated=updated,
                    online_template_replaced=replaced,
                    online_template_frame=target.online_frame,
                    held=held,
                )
            )
        if reencode:
            fresh = self._encode([(self._targets[i].template, online) for i, online in reencode])
            self._cache = self.runtime.replace(self._cache, [i for i, _ in reencode], fresh)
        return results

    @property
    def boxes(self) -> list[tuple[float, float, float, float]]:
        """The current box of every target (x, y, w, h)."""
        return [tuple(t.state) for t in self._targets]

    def set_boxes(self, boxes: Sequence[Sequence[float]]) -> None:
        """Move the targets to ``boxes`` (e.g. a correction from outside); templates are kept."""
        if len(boxes) != len(self._targets):
            raise InputError(f"{len(boxes)} boxes for {len(self._targets)} targets")
        for target, box in zip(self._targets, boxes):
            target.state = [float(v) for v in box]

    # -- helpers -------------------------------------------------------------------------------------
    def _keep_previous(self, frame: np.ndarray) -> None:
        if not self.model_config.motion_input:
            return
        if self._previous is None or self._previous.shape != frame.shape:
            self._previous = np.empty_like(frame)
        np.copyto(self._previous, frame)

    def _template_crop(self, frame: np.ndarray, box: Sequence[float]) -> np.ndarray:
        patch, _ = crop_around(frame, box, self.config.template_factor, self.model_config.template_size)
        return self._normalise(patch[None])

    @staticmethod
    def _normalise(patches: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(N, H, W, 3) uint8 -> normalised float32 (N, 3, H, W), as the official preprocessor
        (float32: x / 255, minus mean, over std); into ``out`` when given (no allocation)."""
        x = patches.transpose(0, 3, 1, 2)
        if out is None:
            out = np.empty(x.shape, np.float32)
        np.divide(x, np.float32(255.0), out=out)
        out -= _MEAN
        out /= _STD
        return out

    def _encode(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> Any:
        template = np.concatenate([p[0] for p in pairs])
        online = np.concatenate([p[1] for p in pairs])
        return self.runtime.encode(template, online)
