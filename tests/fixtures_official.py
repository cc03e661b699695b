"""Access to the official numeric fixtures (read-only ground truth in ../shared).

Cases are discovered by their content, never by folder name, so other seeds, widths,
depths and sizes work unchanged.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from mixformerv2.config import ModelConfig

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO.parent / "shared" / "fixtures" / "official"


def fixtures_dir() -> Path:
    """The fixture folder; a missing folder is an error (the conformance suite must not pass vacuously)."""
    path = Path(os.environ.get("MIXFORMERV2_FIXTURES", DEFAULT_DIR))
    if not path.is_dir():
        raise FileNotFoundError(f"official fixture folder not found: {path} (set MIXFORMERV2_FIXTURES)")
    return path


@dataclass
class Case:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    @cached_property
    def io(self) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        return load_file(str(self.path / "io.safetensors"))

    @property
    def kind(self) -> str:
        """student | online | pruning | teacher | tracker | unknown, from what the case holds."""
        if (self.path / "trace.npz").exists():
            return "tracker"
        keys = self.io.keys()
        if any(k.startswith("g0.") for k in keys):
            return "pruning"
        if any(k.startswith("test.") for k in keys) and any(k.startswith("train.") for k in keys):
            return "online"
        if "out.prob_tl" in keys:
            return "teacher"
        if "out.prob_l" in keys:
            return "student"
        return "unknown"

    @property
    def model_config(self) -> ModelConfig:
        d = self.config["dims"]
        return ModelConfig(
            embed_dim=d["embed_dim"],
            depth=d["depth"],
            num_heads=d["num_heads"],
            mlp_ratio=float(d["mlp_ratio"]),
            patch_size=d["patch_size"],
            template_size=d["template_size"],
            search_size=d["search_size"],
            feat_sz=d.get("FEAT_SZ", d["feat_sz"]),
            score_head=any(e[0].startswith("score_head.") for e in self.config["model"]["state_dict"]),
        )

    def prefixed(self, prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in self.io.items() if k.startswith(prefix)}


def discover() -> list[Case]:
    root = fixtures_dir()
    cases = [Case(p) for p in sorted(root.iterdir()) if (p / "config.json").is_file()]
    if not cases:
        raise FileNotFoundError(f"no fixture cases (folders with config.json) in {root}")
    return cases


@dataclass
class MissingFixtures:
    """Stands in for the cases when the folder is missing, so that each test fails loudly."""

    message: str
    name: str = "fixtures-missing"


def cases_of(kind: str) -> list:
    try:
        return [c for c in discover() if c.kind == kind]
    except FileNotFoundError as exc:
        return [MissingFixtures(str(exc))]


def require(case) -> Case:
    if isinstance(case, MissingFixtures):
        raise FileNotFoundError(case.message)
    return case


def case_ids(cases: list) -> list[str]:
    return [c.name for c in cases]


# -- tolerances (fixture README "Tolerances") ---------------------------------------------------
def assert_bounded(mine, ref, what: str, atol: float = 1e-5) -> None:
    mine, ref = _np(mine), _np(ref)
    assert mine.shape == ref.shape, f"{what}: shape {mine.shape} != {ref.shape}"
    err = np.abs(mine - ref).max()
    assert err <= atol, f"{what}: max |diff| {err:.3g} > {atol}"


def assert_unbounded(mine, ref, what: str) -> None:
    mine, ref = _np(mine), _np(ref)
    assert mine.shape == ref.shape, f"{what}: shape {mine.shape} != {ref.shape}"
    excess = np.abs(mine - ref) - 1e-5 * np.maximum(1.0, np.abs(ref))
    assert excess.max() <= 0, f"{what}: exceeds 1e-5*max(1,|ref|) by {excess.max():.3g}"


def assert_loss(mine, ref, what: str) -> None:
    mine, ref = float(_np(mine).reshape(-1)[0]), float(_np(ref).reshape(-1)[0])
    tol = max(1e-6, 1e-4 * abs(ref))
    assert abs(mine - ref) <= tol, f"{what}: {mine} vs {ref} (tol {tol:.3g})"


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)
