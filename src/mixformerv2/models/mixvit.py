"""MixViT teacher: the MixFormer ViT backbone with a (pyramidal) corner head.

Used as the dense teacher of the dense-to-sparse distillation. Tokens are [template,
online template, search] with the same asymmetric mixed attention as the student; the
search tokens form a map fed to two corner branches (top-left, bottom-right) whose score
maps are turned into boxes by a soft-argmax. Official checkpoints also carry timm's unused
``cls_token``, ``pos_embed``, ``norm`` and ``head``; they are accepted and dropped explicitly.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, ConfigError
from .vit import Block, PatchEmbed, sincos_pos_embed

# timm VisionTransformer parts the official teacher builds but never calls.
UNUSED_TIMM_KEYS = ("backbone.cls_token", "backbone.pos_embed", "backbone.norm.weight", "backbone.norm.bias",
                    "backbone.head.weight", "backbone.head.bias")
HEAD_TYPES = {"corner_up": 4, "corner": 1}  # head type -> upsampling of the patch grid (4x: stride 4 at patch 16)


@dataclass(frozen=True)
class MixViTConfig:
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    template_size: int = 128
    search_size: int = 288
    head_type: str = "corner_up"
    head_channel: int = 384  # official MODEL.HEAD_DIM default

    def __post_init__(self) -> None:
        if self.head_type not in HEAD_TYPES:
            raise ConfigError(f"head_type must be one of {sorted(HEAD_TYPES)} (got {self.head_type!r})")
        if self.embed_dim % self.num_heads or self.search_size % self.patch_size or self.template_size % self.patch_size:
            raise ConfigError(f"inconsistent MixViT config {self}")
        if self.patch_size % HEAD_TYPES[self.head_type]:
            raise ConfigError(f"head {self.head_type} needs a patch size divisible by {HEAD_TYPES[self.head_type]}")
        if self.head_channel % 8:
            raise ConfigError(f"head_channel must be divisible by 8 (got {self.head_channel})")

    @property
    def search_channels(self) -> int:
        return 3  # RGB only (no motion input)

    @property
    def stride(self) -> int:
        return corner_stride(self.patch_size, self.head_type)

    @property
    def map_size(self) -> int:
        """Side F of the corner maps (= the number of bins a matched student needs)."""
        return self.search_size // self.stride

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "MixViTConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Any) -> "MixViTConfig":
        """A preset name (``mixvit-b``), or fields, optionally on top of one (``{preset: mixvit-b, depth: 4}``)."""
        if isinstance(data, str):
            if data not in MIXVIT_PRESETS:
                raise ConfigError(f"unknown teacher preset {data!r}; available: {sorted(MIXVIT_PRESETS)}")
            return MIXVIT_PRESETS[data]
        fields = dict(data)
        fields.pop("architecture", None)
        base = cls.from_dict(fields.pop("preset")) if "preset" in fields else cls()
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ConfigError(f"unknown MixViT config keys {unknown}; known keys: {sorted(known)}")
        return dataclasses.replace(base, **fields)


MIXVIT_PRESETS = {
    "mixvit-b": MixViTConfig(768, 12, 12, 4.0),
    "mixvit-l": MixViTConfig(1024, 24, 16, 4.0),
}


def _conv(cin: int, cout: int) -> nn.Sequential:
    """Conv3x3 -> BatchNorm (running statistics in eval) -> ReLU, official ``conv``."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


def corner_stride(patch_size: int, head_type: str) -> int:
    """Pixels per corner-map cell: the patch grid, upsampled 4x by the pyramidal head."""
    return patch_size // HEAD_TYPES[head_type]


class CornerHead(nn.Module):
    """Official ``Corner_Predictor`` (stride = patch, 16) / ``Corner_Predictor_UP`` (stride = patch / 4, 4)."""

    def __init__(self, dim: int, channel: int, search_size: int, head_type: str, patch_size: int = 16) -> None:
        super().__init__()
        self.up = head_type == "corner_up"
        self.stride = corner_stride(patch_size, head_type)
        self.map_size = search_size // self.stride
        c = channel
        for corner in ("tl", "br"):
            self.add_module(f"conv1_{corner}", _conv(dim, c))
            self.add_module(f"conv2_{corner}", _conv(c, c // 2))
            self.add_module(f"conv3_{corner}", _conv(c // 2, c // 4))
            self.add_module(f"conv4_{corner}", _conv(c // 4, c // 8))
            self.add_module(f"conv5_{corner}", nn.Conv2d(c // 8, 1, 1))
            if self.up:
                self.add_module(f"adjust1_{corner}", _conv(dim, c // 2))
                self.add_module(f"adjust2_{corner}", _conv(dim, c // 4))
                self.add_module(f"adjust3_{corner}", nn.Sequential(_conv(c // 2, c // 4), _conv(c // 4, c // 8), _conv(c // 8, 1)))
                self.add_module(f"adjust4_{corner}", nn.Sequential(_conv(c // 4, c // 8), _conv(c // 8, 1)))
        f = self.map_size
        idx = torch.arange(f * f)
        self.register_buffer("coord_x", (idx % f) * float(self.stride), persistent=False)
        self.register_buffer("coord_y", torch.div(idx, f, rounding_mode="floor") * float(self.stride), persistent=False)

    def _branch(self, x: Tensor, corner: str) -> Tensor:
        m = lambda name: getattr(self, f"{name}_{corner}")  # noqa: E731
        x1 = m("conv1")(x)
        x2 = m("conv2")(x1)
        if not self.up:
            return m("conv5")(m("conv4")(m("conv3")(x2)))
        up = lambda t, k: F.interpolate(t, scale_factor=k)  # noqa: E731  nearest, as official
        x3 = m("conv3")(up(m("adjust1")(x), 2) + up(x2, 2))
        x4 = m("conv4")(up(m("adjust2")(x), 4) + up(x3, 2))
        return m("conv5")(x4) + up(m("adjust3")(x2), 4) + up(m("adjust4")(x3), 2)

    def score_maps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._branch(x, "tl"), self._branch(x, "br")

    def soft_argmax(self, score_map: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        prob = score_map.flatten(1).softmax(dim=1)
        return (prob * self.coord_x).sum(1), (prob * self.coord_y).sum(1), prob

    def forward(self, x: Tensor, softmax: bool = True) -> dict:
        map_tl, map_br = self.score_maps(x)
        x_tl, y_tl, prob_tl = self.soft_argmax(map_tl)
        x_br, y_br, prob_br = self.soft_argmax(map_br)
        img_sz = self.map_size * self.stride
        l, t, r, b = (v / img_sz for v in (x_tl, y_tl, x_br, y_br))
        boxes = torch.stack([(l + r) / 2, (t + b) / 2, r - l, b - t], dim=-1).unsqueeze(1)
        return {
            "pred_boxes": boxes,
            "prob_tl": prob_tl if softmax else map_tl.flatten(1),
            "prob_br": prob_br if softmax else map_br.flatten(1),
            "score_map_tl": map_tl,
            "score_map_br": map_br,
        }


class MixViTBackbone(nn.Module):
    def __init__(self, cfg: MixViTConfig) -> None:
        super().__init__()
        c = cfg.embed_dim
        self.pos_embed_s = nn.Parameter(torch.tensor(sincos_pos_embed(c, cfg.search_size // cfg.patch_size))[None],
                                        requires_grad=False)
        self.pos_embed_t = nn.Parameter(torch.tensor(sincos_pos_embed(c, cfg.template_size // cfg.patch_size))[None],
                                        requires_grad=False)
        self.patch_embed = PatchEmbed(cfg.patch_size, c)
        self.blocks = nn.ModuleList([Block(c, cfg.num_heads, int(c * cfg.mlp_ratio)) for _ in range(cfg.depth)])


class MixViT(nn.Module):
    """The teacher network. ``forward`` returns pred_boxes, prob_tl, prob_br (+ score maps, features)."""

    architecture = "mixvit"  # checkpoint metadata tag

    def __init__(self, config: MixViTConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = MixViTBackbone(config)
        self.box_head = CornerHead(config.embed_dim, config.head_channel, config.search_size, config.head_type,
                                   config.patch_size)

    def forward(self, template: Tensor, online_template: Tensor, search: Tensor, softmax: bool = True) -> dict:
        bb, cfg = self.backbone, self.config
        squeeze = lambda t: t.squeeze(0) if t.dim() == 5 else t  # noqa: E731  official (1, B, ...) stacks
        template, online_template, search = squeeze(template), squeeze(online_template), squeeze(search)
        x = torch.cat(
            [bb.patch_embed(template) + bb.pos_embed_t, bb.patch_embed(online_template) + bb.pos_embed_t,
             bb.patch_embed(search) + bb.pos_embed_s],
            dim=1,
        )
        nt = 2 * (cfg.template_size // cfg.patch_size) ** 2
        feats = []
        for block in bb.blocks:
            x = block(x, nt)
            feats.append(x)
        side = cfg.search_size // cfg.patch_size
        search_map = x[:, nt:].transpose(1, 2).reshape(x.shape[0], -1, side, side)
        out = self.box_head(search_map, softmax=softmax)
        out["distill_feat_list"] = feats
        return out


def corner_marginals(prob_tl: Tensor, prob_br: Tensor, map_size: int) -> dict[str, Tensor]:
    """1-D distributions of the four box edges from the two 2-D corner distributions.

    Rows are y, columns x: left = top-left summed over rows, top = top-left summed over
    columns; right / bottom likewise from the bottom-right map (official stage-1 actor).
    """
    tl = prob_tl.view(-1, map_size, map_size)
    br = prob_br.view(-1, map_size, map_size)
    return {"l": tl.sum(1), "t": tl.sum(2), "r": br.sum(1), "b": br.sum(2)}


def load_teacher(path: str | os.PathLike, config: MixViTConfig | str | None = None,
                 device: str | torch.device = "cpu") -> MixViT:
    """Load an official MixViT checkpoint (or one we saved) strictly; timm's unused keys are dropped by name.

    ``config``: the architecture; None takes it from our safetensors metadata, else ``mixvit-b``.
    """
    import json

    from .checkpoints import read_metadata, read_state_dict

    meta = read_metadata(path)
    if meta and meta.get("architecture") != "mixvit":
        raise CheckpointError(f"{path} holds a {meta.get('architecture', 'mixformerv2')} model, not a MixViT teacher")
    if config is None:
        config = MixViTConfig.from_dict(json.loads(meta["config"])) if "config" in meta else "mixvit-b"
    if isinstance(config, str):
        config = MixViTConfig.from_dict(config)
    state, _ = read_state_dict(path)
    state = {k: v for k, v in state.items() if k not in UNUSED_TIMM_KEYS}
    with torch.device("meta"):
        model = MixViT(config)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    problems = sorted(set(want) ^ set(have)) + [k for k in want if k in have and want[k] != have[k]]
    if problems:
        raise CheckpointError(
            f"{path} does not fit the teacher config {config}: {len(problems)} missing, unexpected or mis-shaped "
            f"keys, e.g. {problems[:6]}"
        )
    model.load_state_dict(state, strict=True, assign=True)
    head = model.box_head
    idx = torch.arange(head.map_size**2)
    head.coord_x = (idx % head.map_size) * float(head.stride)
    head.coord_y = torch.div(idx, head.map_size, rounding_mode="floor") * float(head.stride)
    return model.to(device).eval()
