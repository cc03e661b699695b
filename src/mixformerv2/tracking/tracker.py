"""The MixFormerV2 tracker: crops, network step, map-back and the online-template policy.

Behaviour is that of the official ``MixFormerOnline`` tracker, except that templates are
encoded once (at init and at template updates) instead of on every frame.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..config import PRESETS, ModelConfig, TrackerConfig
from ..errors import InputError
from ..geometry import CropInfo, clip_box, crop_around, map_back, normalize_frame, validate_box
from ..models.mixformerv2 import MixFormerV2, TemplateCache

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


@dataclass
class _Target:
    state: list[float]
    template: Tensor  # normalised initial template (1, 3, T, T)
    online_frame: int = 0
    best: Tensor | None = None  # best-scoring candidate of the current interval (None = initial)
    best_frame: int = 0
    max_score: float = -1.0


def default_tracker_config(model_config: ModelConfig) -> TrackerConfig:
    """The preset's tracker settings when the architecture is a preset's, else the official defaults."""
    for preset in PRESETS.values():
        if preset.model == model_config:
            return preset.tracker
    return TrackerConfig()


class Tracker:
    """Tracks one or several targets through a stream of RGB frames.

    OpenCV contract: ``init(frame, (x, y, w, h))`` then ``ok, box = update(frame)``.
    Richer: ``track(frame) -> TrackResult``. Several targets: ``init_targets`` /
    ``track_targets`` run one batched network step per frame for all targets.
    """

    def __init__(
        self,
        model: MixFormerV2,
        config: TrackerConfig | None = None,
        device: str | torch.device | None = None,
        dataset: str | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.model_config: ModelConfig = model.config
        config = config or default_tracker_config(self.model_config)
        self.config = config.for_dataset(dataset) if dataset else config
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        self._targets: list[_Target] = []
        self._cache: TemplateCache | None = None
        self.frame_id = 0

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        preset: str | None = None,
        device: str | torch.device = "cpu",
        config: TrackerConfig | None = None,
        dataset: str | None = None,
    ) -> "Tracker":
        from ..models.checkpoints import load_checkpoint

        model = load_checkpoint(path, preset=preset, device=device)
        return cls(model, config=config, device=device, dataset=dataset)

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

    @torch.inference_mode()
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

    @torch.inference_mode()
    def track_targets(self, frame: np.ndarray) -> list[TrackResult]:
        if not self._targets:
            raise RuntimeError("call init() / init_targets() before tracking")
        frame = normalize_frame(frame)
        self.frame_id += 1
        cfg, mcfg = self.config, self.model_config
        crops = [crop_around(frame, t.state, cfg.search_factor, mcfg.search_size) for t in self._targets]
        search = self._to_tensor(np.stack([patch for patch, _ in crops]))
        out = self.model.step(search, self._cache, softmax=True)

        boxes_norm = out["pred_boxes"][:, 0]  # (N, 4) normalised cxcywh, float32
        logits = out.get("pred_scores")
        scores = logits.sigmoid() if logits is not None else None
        height, width = frame.shape[:2]
        results, reencode = [], []
        for i, (target, (_, info)) in enumerate(zip(self._targets, crops)):
            # float32 arithmetic as the official tracker, then Python floats
            box_px = (boxes_norm[i] * mcfg.search_size / info.resize_factor).tolist()
            mapped = map_back(box_px, target.state, mcfg.search_size, info.resize_factor)
            target.state = clip_box(mapped, height, width, margin=cfg.clip_margin)
            score = float(scores[i]) if scores is not None else math.nan
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
                )
            )
        if reencode:
            fresh = self._encode([(self._targets[i].template, online) for i, online in reencode])
            for j, (i, _) in enumerate(reencode):
                self._cache.keys[:, i] = fresh.keys[:, j]
                self._cache.values[:, i] = fresh.values[:, j]
        return results

    # -- helpers -------------------------------------------------------------------------------------
    def _template_crop(self, frame: np.ndarray, box: Sequence[float]) -> Tensor:
        patch, _ = crop_around(frame, box, self.config.template_factor, self.model_config.template_size)
        return self._to_tensor(patch[None])

    def _to_tensor(self, patches: np.ndarray) -> Tensor:
        """(N, H, W, 3) uint8 -> normalised float32 (N, 3, H, W), as the official preprocessor."""
        x = torch.from_numpy(patches).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        return x.sub_(self._mean).div_(self._std)

    def _encode(self, pairs: list[tuple[Tensor, Tensor]]) -> TemplateCache:
        template = torch.cat([p[0] for p in pairs])
        online = torch.cat([p[1] for p in pairs])
        return self.model.encode_templates(template, online)
