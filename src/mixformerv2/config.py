"""Model and tracker configuration: dataclasses, named presets, official YAML import."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import CheckpointError, ConfigError


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a MixFormerV2 network (student / online model).

    Everything else (head dim, token grids, bin stride) is derived, never stored twice.
    """

    embed_dim: int = 768
    depth: int = 8
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    template_size: int = 128
    search_size: int = 288
    feat_sz: int = 96  # number of box-head bins
    score_head: bool = True
    # not official: the search input also carries the difference between the search crop and the
    # previous frame cropped in the same window, camera pans undone (3 more channels with their own
    # patch embedding), so the network can tell a moving target from a background that looks like it
    motion_input: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.motion_input, bool):
            problems.append(f"motion_input must be true or false (got {self.motion_input!r})")
        for name in ("embed_dim", "depth", "num_heads", "patch_size", "template_size", "search_size", "feat_sz"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer (got {value!r})")
        if not (isinstance(self.mlp_ratio, (int, float)) and self.mlp_ratio > 0):
            problems.append(f"mlp_ratio must be positive (got {self.mlp_ratio!r})")
        if not problems:
            if self.embed_dim % self.num_heads:
                problems.append(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
            if self.embed_dim % 4:
                problems.append(f"embed_dim {self.embed_dim} must be divisible by 4 (2-D sin-cos position embedding)")
            for name in ("template_size", "search_size"):
                if getattr(self, name) % self.patch_size:
                    problems.append(f"{name} {getattr(self, name)} is not a multiple of patch_size {self.patch_size}")
            if self.mlp_hidden < 1:
                problems.append(f"mlp_ratio {self.mlp_ratio} gives an empty MLP")
        if problems:
            raise ConfigError("invalid model config: " + "; ".join(problems))

    @property
    def search_channels(self) -> int:
        """Channels of the network's search input: RGB, plus the frame difference with motion_input."""
        return 6 if self.motion_input else 3

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)  # official: int(C * mlp_ratio)

    @property
    def feat_sz_t(self) -> int:
        return self.template_size // self.patch_size

    @property
    def feat_sz_s(self) -> int:
        return self.search_size // self.patch_size

    @property
    def num_template_tokens(self) -> int:
        """Tokens of ONE template (the sequence holds two: static + online)."""
        return self.feat_sz_t**2

    @property
    def num_search_tokens(self) -> int:
        return self.feat_sz_s**2

    @property
    def bin_stride(self) -> float:
        return self.search_size / self.feat_sz  # a Python float, as in the official MlpHead

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys {unknown}; known keys: {sorted(known)}")
        return cls(**dict(data))


# TEST.UPDATE_INTERVALS of the official config.py defaults (mixformer2_vit_online family); a YAML only
# overrides some entries (the merge is recursive), so e.g. VOT22STB keeps its default [10].
_DEFAULT_UPDATE_INTERVALS = {
    "lasot": 200, "got10k_test": 200, "trackingnet": 200, "vot20": 200, "vot20lt": 200, "vot22stb": 10, "tnl2k": 200,
}
# Effective update intervals of the official online configs (defaults + YAML), per benchmark; datasets
# without an entry fall back to DATA.MAX_SAMPLE_INTERVAL = 200 in the official tracker.
_UPDATE_INTERVALS_B = {**_DEFAULT_UPDATE_INTERVALS, "got10k_test": 10, "trackingnet": 25, "vot20": 10}
_UPDATE_INTERVALS_S = {**_UPDATE_INTERVALS_B, "got10k_test": 15}
# Search factors of the released test script (tracking/test_mixformer.sh); the YAML says 4.5.
_SEARCH_FACTORS_B = {"lasot": 5.0, "got10k_test": 5.0, "trackingnet": 5.0}
_SEARCH_FACTORS_S = {"lasot": 4.4, "got10k_test": 4.55, "trackingnet": 4.55}


@dataclass(frozen=True)
class TrackerConfig:
    """Pre/post-processing and online-template policy of the tracker (official defaults)."""

    template_factor: float = 2.0
    search_factor: float = 4.5
    update_interval: int = 200
    score_threshold: float = 0.5
    max_score_decay: float = 1.0
    clip_margin: int = 10
    # not official: keep the last box while the confidence score is below this (None: always move;
    # needs a score head). A small model's low scores mark frames where it lost the target.
    hold_below: float | None = None
    # not official: the box's width and height change by at most this factor per frame (None: free).
    # A small model's size errors feed back through the next crop (a box grown on a tiny target
    # grows the crop, which shrinks the target): 1.02 stops that drift.
    max_scale_change: float | None = None
    update_intervals: Mapping[str, int] = field(default_factory=dict)
    search_factors: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.template_factor > 0 and self.search_factor > 0):
            raise ConfigError("template_factor and search_factor must be positive")
        if not (isinstance(self.update_interval, int) and self.update_interval >= 1):
            raise ConfigError(f"update_interval must be a positive integer (got {self.update_interval!r})")
        if self.hold_below is not None and not 0.0 < self.hold_below < 1.0:
            raise ConfigError(f"hold_below must be a score strictly between 0 and 1, or None (got {self.hold_below!r})")
        if self.max_scale_change is not None and not 1.0 < self.max_scale_change < math.inf:
            raise ConfigError(f"max_scale_change must be a factor above 1, or None (got {self.max_scale_change!r})")

    def replace(self, **changes: Any) -> "TrackerConfig":
        return dataclasses.replace(self, **changes)

    def check_model(self, model: "ModelConfig", source: str = "this model") -> None:
        """Raise a ConfigError when these settings need what ``model`` lacks (hold_below: a score head)."""
        if self.hold_below is not None and not model.score_head:
            raise ConfigError(f"hold_below={self.hold_below} needs a score, but {source} has no score head")

    def overridden(self, **settings: Any) -> "TrackerConfig":
        """This config with the ``settings`` that are not None (command-line overrides)."""
        given = {k: v for k, v in settings.items() if v is not None}
        return self.replace(**given) if given else self

    def for_dataset(self, name: str) -> "TrackerConfig":
        """The settings the official scripts use on benchmark `name` (e.g. 'lasot', 'got10k_test')."""
        key = name.lower()
        return self.replace(
            update_interval=self.update_intervals.get(key, self.update_interval),
            search_factor=self.search_factors.get(key, self.search_factor),
        )


def recorded_tracker_settings(settings: Any, source: str) -> dict:
    """Tracker settings recorded with weights (a dict of :class:`TrackerConfig` fields), checked."""
    try:
        TrackerConfig(**settings)
    except (TypeError, ConfigError) as exc:
        raise CheckpointError(f"{source}: the recorded tracker settings {settings!r} are not valid ({exc})") from None
    return dict(settings)


@dataclass(frozen=True)
class Preset:
    name: str
    model: ModelConfig
    tracker: TrackerConfig
    description: str = ""


PRESETS: dict[str, Preset] = {
    "mixformerv2-b": Preset(
        "mixformerv2-b",
        ModelConfig(768, 8, 12, 4.0, 16, 128, 288, 96, True),
        TrackerConfig(update_intervals=_UPDATE_INTERVALS_B, search_factors=_SEARCH_FACTORS_B),
        "MixFormerV2-B (official 288_depth8_score): search 288, template 128, 8 layers, MLP ratio 4",
    ),
    "mixformerv2-s": Preset(
        "mixformerv2-s",
        ModelConfig(768, 4, 12, 1.0, 16, 112, 224, 96, True),
        TrackerConfig(update_intervals=_UPDATE_INTERVALS_S, search_factors=_SEARCH_FACTORS_S),
        "MixFormerV2-S (official 224_depth4_mlp1_score): search 224, template 112, 4 layers, MLP ratio 1",
    ),
}


def get_preset(name: str) -> Preset:
    key = name.lower().replace("_", "-")
    if key not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    return PRESETS[key]


# --- official experiment YAML ------------------------------------------------------------------

_VIT_TYPES = {"base_patch16": (768, 12), "large_patch16": (1024, 16)}


def _get(tree: Mapping[str, Any], path: str, default: Any = None) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) else value


def configs_from_official_yaml(path: str | Path) -> tuple[ModelConfig, TrackerConfig]:
    """Read an official experiment YAML (e.g. ``224_depth4_mlp1_score.yaml``).

    Values absent from the YAML take the official ``config.py`` defaults of the
    ``mixformer2_vit_online`` family.
    """
    import yaml

    path = Path(path)
    try:
        tree = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read official YAML {path}: {exc}") from None
    if not isinstance(tree, Mapping) or "MODEL" not in tree:
        raise ConfigError(f"{path} is not an official MixFormerV2 experiment YAML (no MODEL section)")

    vit_type = _get(tree, "MODEL.VIT_TYPE", "base_patch16")
    if vit_type not in _VIT_TYPES:
        raise ConfigError(f"{path}: unsupported MODEL.VIT_TYPE {vit_type!r} (known: {sorted(_VIT_TYPES)})")
    width, heads = _VIT_TYPES[vit_type]
    width = int(_get(tree, "MODEL.HIDDEN_DIM", width))
    head_type = _get(tree, "MODEL.HEAD_TYPE", "MLP")
    if head_type != "MLP":
        raise ConfigError(f"{path}: MODEL.HEAD_TYPE {head_type!r} is a MixViT teacher config, not a MixFormerV2 one")
    search = int(_get(tree, "DATA.SEARCH.SIZE", 288))
    template = int(_get(tree, "DATA.TEMPLATE.SIZE", 128))
    test_search = int(_get(tree, "TEST.SEARCH_SIZE", search))
    test_template = int(_get(tree, "TEST.TEMPLATE_SIZE", template))
    if (test_search, test_template) != (search, template):
        raise ConfigError(
            f"{path}: TEST sizes {test_search}/{test_template} differ from DATA sizes {search}/{template}; "
            "the network's position embeddings only fit the DATA sizes"
        )
    model = ModelConfig(
        embed_dim=width,
        depth=int(_get(tree, "MODEL.BACKBONE.DEPTH", 12)),
        num_heads=heads,
        mlp_ratio=float(_get(tree, "MODEL.BACKBONE.MLP_RATIO", 4)),
        template_size=template,
        search_size=search,
        feat_sz=int(_get(tree, "MODEL.FEAT_SZ", 18)),
        score_head=bool(_get(tree, "TRAIN.TRAIN_SCORE", False) or _get(tree, "MODEL.PRETRAINED_STATIC", False)),
    )
    intervals = dict(_DEFAULT_UPDATE_INTERVALS)
    intervals.update(
        {k.lower(): int(_first(v)) for k, v in (_get(tree, "TEST.UPDATE_INTERVALS", {}) or {}).items()}
    )
    tracker = TrackerConfig(
        template_factor=float(_get(tree, "TEST.TEMPLATE_FACTOR", 2.0)),
        search_factor=float(_get(tree, "TEST.SEARCH_FACTOR", 5.0)),
        update_interval=int(_first(_get(tree, "DATA.MAX_SAMPLE_INTERVAL", 200))),
        update_intervals=intervals,
    )
    return model, tracker


def config_to_json(config: ModelConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


def config_from_json(text: str) -> ModelConfig:
    try:
        return ModelConfig.from_dict(json.loads(text))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ConfigError(f"embedded model config is not valid: {exc}") from None


def infer_config_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> ModelConfig:
    """Derive the architecture from a state dict's shapes (official key names).

    The head count is not visible in the shapes; ViTs use 64-dimensional heads, so
    ``num_heads = embed_dim // 64`` unless the caller overrides it.
    """
    try:
        embed_dim, _, patch, _ = shapes["backbone.patch_embed.proj.weight"]
        depth = 1 + max(int(k.split(".")[2]) for k in shapes if k.startswith("backbone.blocks."))
        hidden = shapes["backbone.blocks.0.mlp.fc1.weight"][0]
        feat_sz = shapes["box_head.layers.1.0.weight"][0]
        n_t = shapes["backbone.pos_embed_t"][1]
        n_s = shapes["backbone.pos_embed_s"][1]
    except (KeyError, ValueError, IndexError):
        raise ConfigError("cannot infer the architecture: this is not a MixFormerV2 state dict") from None
    side_t, side_s = math.isqrt(n_t), math.isqrt(n_s)
    if side_t**2 != n_t or side_s**2 != n_s:
        raise ConfigError(f"position embeddings of {n_t}/{n_s} tokens are not square grids")
    return ModelConfig(
        embed_dim=embed_dim,
        depth=depth,
        num_heads=max(1, embed_dim // 64) if embed_dim % 64 == 0 else 1,
        mlp_ratio=hidden / embed_dim,
        patch_size=patch,
        template_size=side_t * patch,
        search_size=side_s * patch,
        feat_sz=feat_sz,
        score_head="score_head.layers.1.weight" in shapes,
        motion_input="backbone.motion_embed.proj.weight" in shapes,
    )
