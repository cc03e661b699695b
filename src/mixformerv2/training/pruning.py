"""Model reduction tools: the progressive depth-pruning gate schedule, physical layer
removal with renumbering, and MLP hidden-width slicing (paper §3.2)."""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import torch
from torch import Tensor

from ..errors import ConfigError

_BLOCK = re.compile(r"^(.*\bblocks\.)(\d+)(\..*)$")
_POS_EMBED_KEYS = ("pos_embed_s", "pos_embed_t", "mask_token")


def gamma_schedule(epoch: int, decay_epochs: int = 40, official_offset: bool = True) -> float:
    """Gate of the layers being removed at ``epoch`` (1-based), cosine from 1 to 0 (paper eq. 9).

    ``official_offset=True`` reproduces the official trainer, which evaluates the cosine at
    min(epoch + 1, m): the first epoch already uses 0.99384 (m = 40) and gamma reaches 0 one
    epoch early. ``False`` follows the paper: gamma = 0.5 (1 + cos(pi * min(epoch, m) / m)).
    """
    if epoch < 1 or decay_epochs < 1:
        raise ConfigError(f"epoch and decay_epochs must be >= 1 (got {epoch}, {decay_epochs})")
    t = min(epoch + 1 if official_offset else epoch, decay_epochs)
    return 0.5 * (1.0 + math.cos(math.pi * t / decay_epochs))


def layer_gammas(depth: int, removed: Sequence[int], gamma: float) -> list[float]:
    check_layers(depth, removed)
    return [gamma if i in set(removed) else 1.0 for i in range(depth)]


def check_layers(depth: int, layers: Sequence[int]) -> None:
    bad = [i for i in layers if not 0 <= int(i) < depth]
    if bad or len(set(layers)) != len(layers):
        raise ConfigError(f"layer list {list(layers)} is not a set of distinct indices in 0..{depth - 1}")


def remove_layers(state: Mapping[str, Tensor], removed: Sequence[int], keep_pos_embed: bool = True) -> dict[str, Tensor]:
    """Drop the blocks in ``removed`` and renumber the rest consecutively.

    ``keep_pos_embed=False`` also drops the position embeddings (and mask token) as the
    official ``convert_ckpt.remove_layers`` does, so the pruned model uses fresh sin-cos
    tables; by default they are kept, so the pruned model equals the gamma = 0 model exactly.
    """
    if not removed:
        return dict(state)
    indices = sorted({int(m.group(2)) for k in state if (m := _BLOCK.match(k))})
    check_layers(len(indices), removed)
    renumber = {old: new for new, old in enumerate(i for i in indices if i not in set(removed))}
    out = {}
    for key, value in state.items():
        m = _BLOCK.match(key)
        if m:
            old = int(m.group(2))
            if old in renumber:
                out[f"{m.group(1)}{renumber[old]}{m.group(3)}"] = value
        elif keep_pos_embed or not any(p in key for p in _POS_EMBED_KEYS):
            out[key] = value
    return out


def slice_mlp(state: Mapping[str, Tensor], hidden: int) -> dict[str, Tensor]:
    """Initialise a narrower MLP by keeping the first ``hidden`` units of every block's MLP:
    fc1.weight[:hidden], fc1.bias[:hidden], fc2.weight[:, :hidden] (paper: w' = w[:d1', :d2'])."""
    out = dict(state)
    for key, value in state.items():
        if key.endswith("mlp.fc1.weight") or key.endswith("mlp.fc1.bias"):
            if value.shape[0] < hidden:
                raise ConfigError(f"{key}: cannot slice {value.shape[0]} hidden units to {hidden}")
            out[key] = value[:hidden].clone()
        elif key.endswith("mlp.fc2.weight"):
            out[key] = value[:, :hidden].clone()
    return out


def pruned_config_state(model: torch.nn.Module, removed: Sequence[int]):
    """(config, state dict) of ``model`` with the blocks in ``removed`` physically removed."""
    cfg = model.config
    return cfg.replace(depth=cfg.depth - len(removed)), remove_layers(model.state_dict(), removed)
