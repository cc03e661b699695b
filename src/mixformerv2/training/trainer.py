"""Training loop: official optimiser/schedule, exact resume, atomic checkpoints, DDP (torchrun).

Official behaviour reproduced (spec §3.2, §3.4, §3.5): AdamW with the head at ``lr`` and the
backbone at ``lr * 0.1`` (frozen parameters excluded), ``StepLR(lr_drop_epoch, 0.1)`` stepped per
epoch, ``clip_grad_norm_(0.1)``, CIoU + L1 on the box (stage ``gt``) or BCE on the score with
everything but the score head frozen (stage ``score``), seeds ``seed + rank``.

Determinism: a training sample is a pure function of (seed, epoch, index) (the sampler's
contract); the order of the indices comes from a generator seeded by (seed, epoch); each rank
takes the positions ``i % world_size == rank`` of that order. Every epoch ends with a checkpoint
holding model, optimiser, scheduler, step counters and the RNG states of every rank, so a run
stopped after epoch k and resumed gives the same per-iteration losses as an uninterrupted run.

Layout of ``out_dir``::

    run_config.json          settings of the run (compared on --resume)
    checkpoints/epoch_0001.pt ... last.pt   torch.save, loaded with weights_only=True
    log.csv                  one row per log window
    tb/                      TensorBoard scalars (if tensorboard is installed)
    model.safetensors        final weights in our format (mixformerv2 track --weights ...); with
                             ``ema_decay`` > 0 the averaged weights
    model_last_step.safetensors  with ``ema_decay`` > 0: the last step's weights, not averaged
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import json
import math
import os
import random
import re
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import CheckpointError, ConfigError, MixFormerError
from ..models.checkpoints import TRAINING_FORMAT, save_checkpoint
from ..models.mixformerv2 import MixFormerV2
from ..fileio import atomic_target, atomic_write, atomic_write_text
from ..hardware import bf16_emulation_note
from .distill import (
    distillation_losses,
    init_from_checkpoint,
    load_teacher_model,
    run_teacher,
    student_forward_kwargs,
)
from .losses import box_losses, center_edge_loss, center_loss, edge_distribution_loss, score_loss
from .pruning import gamma_schedule, layer_gammas

CHECKPOINT_VERSION = 1
STAGES = ("gt", "dense_to_sparse", "deep_to_shallow", "score")
IOU_TYPES = ("ciou", "giou")
# Position embeddings are fixed sin-cos tables (requires_grad False, as official).
FIXED_PARAMETERS = ("backbone.pos_embed_s", "backbone.pos_embed_t")
# Settings that may change when resuming without changing the result of the finished epochs.
RESUMABLE_KEYS = ("train.epochs", "train.workers", "train.log_every", "train.keep_checkpoints", "train.init_weights")
CSV_COLUMNS = (
    "epoch", "iter", "step", "loss", "loss_iou", "loss_l1", "iou", "loss_dfl", "loss_center", "loss_center_edge",
    "loss_score", "loss_distill", "loss_feat", "gamma", "grad_norm", "lr", "lr_backbone", "samples_per_s", "resampled",
)
_METRICS = ("loss", "loss_iou", "loss_l1", "iou", "loss_dfl", "loss_center", "loss_center_edge", "loss_score",
            "loss_distill", "loss_feat", "grad_norm")
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.pt$")
_TMP_FILE = re.compile(r"^\.(epoch_\d+\.pt|last\.pt|run_config\.json|log\.csv)\..*\.tmp$")


class TrainingError(MixFormerError):
    """Training cannot start or continue (output directory conflicts, diverged loss, ...)."""


# ------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; defaults = official ``288_depth8_score`` TRAIN section (spec §2.3).

    ``batch_size`` is per process (the official 32 per GPU). ``workers`` = DataLoader workers
    per process. ``grad_clip <= 0`` disables clipping. ``keep_checkpoints <= 0`` keeps all.
    ``init_weights`` (a checkpoint) initialises a fresh run, e.g. the GT-trained model before
    stage ``score`` (official ``--static_model``; missing score-head weights are allowed), after
    removing ``init_remove_layers`` (physical depth pruning), slicing the MLPs to the model's
    width (``init_slice_mlp``, MLP reduction) or taking only its backbone (``init_backbone_only``).

    Distillation (stages ``dense_to_sparse`` / ``deep_to_shallow``, see :mod:`.distill`):
    ``teacher`` (checkpoint) and ``teacher_model`` (its architecture when the file does not say),
    ``distill_weight`` (KL of the distributions, official CORNER_WEIGHT 5), ``feat_weight``
    (feature mimicking, official 0.2) on ``distill_layers_student`` / ``_teacher`` pairs,
    ``remove_layers`` faded out by gamma over ``gamma_epochs`` (``gamma_official``: the official
    off-by-one schedule) and frozen.

    ``bf16`` asks for bfloat16 autocast where the device runs it natively (AVX-512 BF16 / AMX CPUs,
    Ampere+ GPUs); elsewhere it is emulated and ~10x slower, so training stays float32, saying so.

    ``center_weight`` > 0 adds a training-only centre head on block ``center_layer``'s search tokens
    (:class:`CenterSupervised`, :func:`.losses.center_loss`); the saved model does not contain it.
    ``center_edge_weight`` > 0 makes that head also regress each token's distances to the box edges
    (:func:`.losses.center_edge_loss`).

    ``ema_decay`` > 0 keeps an exponential moving average of the model's weights (not official;
    :class:`WeightAverage`), saved in every checkpoint and as the final ``model.safetensors``.
    """

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-4
    backbone_lr_mult: float = 0.1
    weight_decay: float = 1e-4
    lr_drop_epoch: int = 20
    lr_drop_gamma: float = 0.1
    grad_clip: float = 0.1
    bf16: bool = False
    workers: int = 8
    seed: int = 42
    stage: str = "gt"
    iou_type: str = "ciou"
    iou_weight: float = 2.0
    l1_weight: float = 5.0
    dfl_weight: float = 0.0  # edge-distribution loss (not official; helps training from scratch)
    center_weight: float = 0.0  # training-only centre head on the search tokens (not official; see CenterSupervised)
    center_layer: int = -2  # the block whose search tokens it supervises (negative: from the end)
    center_edge_weight: float = 0.0  # the centre head also regresses the edges (needs center_weight > 0)
    score_weight: float = 1.0
    log_every: int = 50
    keep_checkpoints: int = 3
    shuffle: bool = True
    init_weights: str | None = None
    init_remove_layers: tuple[int, ...] = ()
    init_slice_mlp: bool = False
    init_backbone_only: bool = False
    teacher: str | None = None
    teacher_model: Any = None
    distill_weight: float = 5.0
    feat_weight: float = 0.2
    distill_layers_student: tuple[int, ...] = ()
    distill_layers_teacher: tuple[int, ...] = ()
    remove_layers: tuple[int, ...] = ()
    gamma_epochs: int = 40
    gamma_official: bool = True
    ema_decay: float = 0.0  # weight averaging (not official): 0 off, else e.g. 0.999 (see WeightAverage)

    def __post_init__(self) -> None:
        problems = []
        for name in ("init_remove_layers", "distill_layers_student", "distill_layers_teacher", "remove_layers"):
            v = getattr(self, name)
            if isinstance(v, (list, tuple)) and all(_is_int(i) and i >= 0 for i in v):
                object.__setattr__(self, name, tuple(int(i) for i in v))
            else:
                problems.append(f"{name} must be a list of layer indices (got {v!r})")
        if not _is_int(self.gamma_epochs) or self.gamma_epochs < 1:
            problems.append(f"gamma_epochs must be a positive integer (got {self.gamma_epochs!r})")
        if self.teacher is not None and not isinstance(self.teacher, str):
            problems.append(f"teacher must be a path (got {self.teacher!r})")
        if self.teacher_model is not None and not isinstance(self.teacher_model, (str, Mapping)):
            problems.append(f"teacher_model must be a preset name or a mapping of fields (got {self.teacher_model!r})")
        for name in ("epochs", "batch_size", "lr_drop_epoch", "log_every"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                problems.append(f"{name} must be a positive integer (got {v!r})")
        if not _is_int(self.center_layer):
            problems.append(f"center_layer must be a block index (got {self.center_layer!r})")
        for name in ("workers", "seed", "keep_checkpoints"):
            v = getattr(self, name)
            if not _is_int(v) or (v < 0 and name != "keep_checkpoints"):
                problems.append(f"{name} must be a non-negative integer (got {v!r})")
        for name in _FLOAT_KEYS:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                problems.append(f"{name} must be a non-negative number (got {v!r})")
        if isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool) and self.lr <= 0:
            problems.append(f"lr must be positive (got {self.lr!r})")
        if self.stage not in STAGES:
            problems.append(f"stage must be one of {list(STAGES)} (got {self.stage!r})")
        if self.iou_type not in IOU_TYPES:
            problems.append(f"iou_type must be one of {list(IOU_TYPES)} (got {self.iou_type!r})")
        for name in ("bf16", "shuffle", "init_slice_mlp", "init_backbone_only", "gamma_official"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false (got {getattr(self, name)!r})")
        if isinstance(self.ema_decay, (int, float)) and not isinstance(self.ema_decay, bool) and self.ema_decay >= 1:
            problems.append(f"ema_decay must be below 1 (got {self.ema_decay!r}; 0 turns averaging off)")
        if self.init_weights is not None and not isinstance(self.init_weights, str):
            problems.append(f"init_weights must be a path (got {self.init_weights!r})")
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "training config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown training keys {unknown}; known keys: {sorted(known)}")
        data = dict(data)
        for name in _FLOAT_KEYS:
            if _is_int(data.get(name)):
                data[name] = float(data[name])  # YAML "1" for a float setting
        return cls(**data)


_FLOAT_KEYS = ("lr", "backbone_lr_mult", "weight_decay", "lr_drop_gamma", "grad_clip", "iou_weight", "l1_weight",
               "dfl_weight", "center_weight", "center_edge_weight", "score_weight", "distill_weight", "feat_weight",
               "ema_decay")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ------------------------------------------------------------------------------------------------
# seeds, distributed set-up, sharding
# ------------------------------------------------------------------------------------------------
def derive_seed(*values: int) -> int:
    """A well-mixed 63-bit seed from integers (seed, epoch, rank, ...)."""
    words = np.random.SeedSequence([int(v) & 0xFFFFFFFFFFFFFFFF for v in values]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices), as the official ``init_seeds``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def distributed_env() -> DistInfo:
    """RANK / WORLD_SIZE / LOCAL_RANK as set by torchrun (single process when absent)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    try:
        return DistInfo(
            int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
        )
    except ValueError as exc:
        raise ConfigError(f"bad distributed environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}") from None


def resolve_device(device: str | torch.device | None, info: DistInfo) -> torch.device:
    """``None``/'auto' -> cuda if available else cpu; under torchrun, cuda means cuda:LOCAL_RANK."""
    name = "auto" if device is None else str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name} requested but CUDA is not available (use --device cpu)")
        if dev.index is None:
            dev = torch.device("cuda", info.local_rank if info.enabled else torch.cuda.current_device())
    return dev


class ShardedEpochSampler(Sampler[int]):
    """Deterministic shuffling + sharding: the epoch's permutation comes from a generator
    seeded by (seed, epoch); rank r takes the positions i with i % world_size == r. Every rank
    gets the same number of indices (the tail that does not divide evenly is dropped)."""

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        self.size, self.seed, self.rank, self.world_size, self.shuffle = size, seed, rank, world_size, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def permutation(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        g = torch.Generator()
        g.manual_seed(derive_seed(self.seed, self.epoch, 0x5348))
        return torch.randperm(self.size, generator=g).tolist()

    def indices(self) -> list[int]:
        per_rank = self.size // self.world_size
        return self.permutation()[self.rank : per_rank * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        return self.size // self.world_size


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker with base_seed + worker_id, base_seed drawn from the loader's
    # own (deterministically seeded) generator; derive python/numpy seeds from it.
    s = torch.initial_seed() % 2**32
    random.seed(s)
    np.random.seed(s)


# ------------------------------------------------------------------------------------------------
# optimiser
# ------------------------------------------------------------------------------------------------
def configure_trainable(model: nn.Module, stage: str, frozen_layers: tuple[int, ...] = ()) -> None:
    """Set ``requires_grad`` as official: stage 'score' trains only parameters named '*score*';
    the box stages train everything except the fixed position embeddings, the score head
    (the official box-training models have none) and the blocks in ``frozen_layers`` (the ones
    being removed by progressive depth pruning)."""
    frozen = tuple(f"backbone.blocks.{i}." for i in frozen_layers)
    for name, p in model.named_parameters():
        if stage == "score":
            p.requires_grad_("score" in name)
        else:
            p.requires_grad_(name not in FIXED_PARAMETERS and "score" not in name and not name.startswith(frozen))


def build_param_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """Official ``get_optimizer_scheduler`` groups (frozen parameters excluded)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if config.stage == "score":
        return [{"params": [p for n, p in named if "score" in n], "lr": config.lr}]
    groups = [
        {"params": [p for n, p in named if "backbone" not in n], "lr": config.lr},
        {"params": [p for n, p in named if "backbone" in n], "lr": config.lr * config.backbone_lr_mult},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(
    model: nn.Module, config: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.StepLR]:
    """AdamW (default betas/eps, decay on every parameter) + StepLR(lr_drop_epoch, gamma)."""
    groups = build_param_groups(model, config)
    if not groups:
        raise ConfigError(f"stage {config.stage!r}: the model has no trainable parameters")
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_drop_epoch, gamma=config.lr_drop_gamma)
    return optimizer, scheduler


# ------------------------------------------------------------------------------------------------
# file helpers
# ------------------------------------------------------------------------------------------------
def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(obj, f))
    return path


def _atomic_alias(src: Path, dst: Path) -> None:
    """Make ``dst`` a hard link to ``src`` (a copy where links are not supported), atomically."""
    with atomic_target(dst) as tmp:
        os.unlink(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def load_training_checkpoint(path: str | os.PathLike) -> dict:
    """Read one training checkpoint (tensors and plain containers only: ``weights_only=True``)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated / corrupt files raise many kinds of errors
        raise CheckpointError(f"cannot read training checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != TRAINING_FORMAT:
        raise CheckpointError(f"{path} is not a mixformerv2 training checkpoint")
    missing = [k for k in ("model", "optimizer", "scheduler", "epoch", "global_step", "config") if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}")
    return state


def checkpoint_epochs(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of the epoch checkpoints in ``ckpt_dir``, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _EPOCH_FILE.match(p.name))]
    return sorted(found)


def find_last_checkpoint(ckpt_dir: Path) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads (epoch files newest first, then ``last.pt``)."""
    candidates = [p for _, p in reversed(checkpoint_epochs(ckpt_dir))]
    if (ckpt_dir / "last.pt").is_file():
        candidates.append(ckpt_dir / "last.pt")
    for path in candidates:
        try:
            return path, load_training_checkpoint(path)
        except CheckpointError as exc:
            warnings.warn(f"skipping unreadable checkpoint: {exc}", stacklevel=2)
    return None


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts/lists -> {'a.b.0.c': leaf}."""
    if isinstance(tree, Mapping):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return {prefix: tree}
    out: dict[str, Any] = {}
    for k, v in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        sub = flatten(v, key)
        out.update(sub if sub else {key: v})
    return out


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two run configs (added/removed keys included).

    A training setting missing from ``old`` (a run made before the setting existed) that has its
    default value in ``new`` is no change."""
    a, b = flatten(_plain(old)), flatten(_plain(new))
    defaults = flatten(_plain({"train": TrainConfig().to_dict()}))
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>")
                  and not (k not in a and k in defaults and b[k] == defaults[k]))


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


# ------------------------------------------------------------------------------------------------
# RNG states (plain containers + tensors so that weights_only loading works)
# ------------------------------------------------------------------------------------------------
def rng_state() -> dict:
    version, internal, gauss = random.getstate()
    key, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": {"key": key, "state": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: Mapping) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    keys = n["state"].numpy().astype(np.uint32)
    np.random.set_state((n["key"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = list(state["cuda"])[: torch.cuda.device_count()]
        for i, s in enumerate(cuda_states):
            torch.cuda.set_rng_state(s, i)


# ------------------------------------------------------------------------------------------------
# logging
# ------------------------------------------------------------------------------------------------
_TB_WARNED = False


def _summary_writer(log_dir: Path, purge_step: int | None):
    global _TB_WARNED
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception as exc:  # tensorboard not installed (ImportError) or broken
        if not _TB_WARNED:
            warnings.warn(
                f"TensorBoard logging disabled ({exc}); install it with `pip install tensorboard`. "
                "log.csv is written regardless.",
                stacklevel=3,
            )
            _TB_WARNED = True
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def read_log(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class _Window:
    """Per-iteration metrics summed on the device; synchronised only when a row is written."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(_METRICS) + 1, dtype=torch.float64, device=self.device)
        self.iters = 0
        self.samples = 0
        self.start = time.perf_counter()

    def add(self, parts: Mapping[str, Tensor], resampled: Tensor, batch: int) -> None:
        zero = torch.zeros((), device=self.device)
        vals = [parts.get(k, zero).detach().to(self.device, torch.float64).reshape(()) for k in _METRICS]
        vals.append(resampled.detach().to(self.device, torch.float64).sum())
        self.sums += torch.stack(vals)
        self.iters += 1
        self.samples += batch

    def reduce(self, info: DistInfo) -> tuple[dict[str, float], float, int]:
        sums = self.sums.clone()
        if info.enabled:
            dist.all_reduce(sums)
        values = sums.tolist()
        n = self.iters * info.world_size
        means = {k: values[i] / n for i, k in enumerate(_METRICS)}
        seconds = max(time.perf_counter() - self.start, 1e-9)
        return means, self.samples * info.world_size / seconds, int(round(values[-1]))


class WeightAverage:
    """Exponential moving average of a model's floating-point weights (parameters and buffers).

    After each optimiser step ``average = d * average + (1 - d) * weights``, with the decay ramped up
    as ``d = min(decay, (1 + step) / (10 + step))`` so that the first steps' near-random weights do
    not linger in a short run. The average is kept in float32 whatever the model trains in.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self._live = {k: v for k, v in model.state_dict(keep_vars=True).items() if v.is_floating_point()}
        self.average = {k: v.detach().float().clone() for k, v in self._live.items()}

    def rate(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, step: int) -> None:
        names = list(self.average)
        torch._foreach_lerp_([self.average[k] for k in names], [self._live[k].detach().float() for k in names],
                             1.0 - self.rate(step))

    def state_dict(self) -> dict[str, Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.average.items()}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        if set(state) != set(self.average):
            raise CheckpointError("the checkpoint's weight average does not match the model's tensors")
        for k, v in state.items():
            self.average[k].copy_(v)

    def averaged_model_state(self, model: nn.Module) -> dict[str, Tensor]:
        """``model``'s state dict with the averaged tensors in place of its own (dtypes kept)."""
        return {k: (self.average[k].to(v.dtype) if k in self.average else v) for k, v in model.state_dict().items()}


class CenterSupervised(nn.Module):
    """The student plus a training-only centre head: one logit per search token of block ``layer``,
    and with ``edges`` also the token's distances to the four box edges (``center_edges``).

    What the optimiser and DistributedDataParallel see when ``center_weight`` > 0, so the head's
    gradients are averaged across processes like the model's; the saved model is ``.model`` alone.
    """

    EDGE_SCALE = 0.25  # softplus(0) x 0.25 = 0.17 of the crop: about a target's half-size at search factor 4.5

    def __init__(self, model: MixFormerV2, layer: int, edges: bool = False) -> None:
        super().__init__()
        self.model = model
        self.layer = layer
        self.center_head = nn.Linear(model.config.embed_dim, 5 if edges else 1)

    def forward(self, *args: Any, **kwargs: Any) -> dict:
        out = self.model(*args, search_tokens_of=self.layer, **kwargs)
        z = self.center_head(out.pop("search_tokens"))  # (B, Ns, 1 or 5)
        out["center_logits"] = z[..., 0]
        if z.shape[-1] > 1:
            out["center_edges"] = F.softplus(z[..., 1:].float()) * self.EDGE_SCALE  # (B, Ns, 4), crop units
        return out


# ------------------------------------------------------------------------------------------------
# the trainer
# ------------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    out_dir: Path
    epochs_done: int
    global_step: int
    model_path: Path | None
    checkpoint: Path | None
    resumed_from: Path | None


class Trainer:
    """Train a :class:`MixFormerV2` on a tracking sample dataset.

    ``dataset`` is a map-style dataset whose items are dicts with ``template``,
    ``online_template``, ``search`` (3,H,W float), ``search_anno`` (4,) normalised xywh,
    ``label`` () and optionally ``resampled`` () (see ``data.sampling.TrackingSampler``), or a
    zero-argument callable returning one (called after the output folder has been checked).
    ``data_config`` describes the data (recorded in ``run_config.json`` and compared on resume).
    Works single-process and under ``torchrun`` (env RANK / WORLD_SIZE / LOCAL_RANK).
    """

    def __init__(
        self,
        model: MixFormerV2,
        dataset: Dataset | Callable[[], Dataset],
        config: TrainConfig,
        out_dir: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        resume: bool = False,
        overwrite: bool = False,
        data_config: Mapping[str, Any] | None = None,
        extra_config: Mapping[str, Any] | None = None,
        progress: bool = True,
    ) -> None:
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")
        self.model = model
        self._dataset = dataset
        self.config = config
        self.out_dir = Path(out_dir)
        self.device_arg = device
        self.resume = resume
        self.overwrite = overwrite
        self.data_config = dict(data_config or {})
        self.extra_config = dict(extra_config or {})
        self.progress = progress
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.log_path = self.out_dir / "log.csv"
        self.epoch = 0
        self.global_step = 0
        self._tb = None
        self._checked_shapes = False
        self.dist: DistInfo | None = None
        self.teacher: nn.Module | None = None
        self.gamma: float | None = None  # gate of the layers being removed, this epoch
        self.center: CenterSupervised | None = None
        self.ema: WeightAverage | None = None

    # -- configuration identity --------------------------------------------------------------------
    def run_config(self) -> dict[str, Any]:
        return _plain({
            "model": self.model.config.to_dict(),
            "data": self.data_config,
            "train": self.config.to_dict(),
            **self.extra_config,
        })

    # -- entry point -----------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        self.dist = distributed_env()
        self.device = resolve_device(self.device_arg, self.dist)
        created_group = False
        if self.dist.enabled and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            created_group = True
        elif self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        try:
            return self._fit()
        finally:
            if self._tb is not None:
                self._tb.close()
                self._tb = None
            if created_group and dist.is_initialized():
                # DDP's reducer holds the group: free it while the interpreter is fully alive, not at
                # exit, where tearing down gloo's threads has aborted a rank (seen once in the suite)
                if isinstance(getattr(self, "net", None), nn.parallel.DistributedDataParallel):
                    self.net = self.net.module
                    gc.collect()
                dist.destroy_process_group()

    def _barrier(self) -> None:
        if self.dist.enabled:
            dist.barrier()

    def _fit(self) -> TrainResult:
        cfg, info = self.config, self.dist
        teacher_cfg = self.preflight()
        checkpoint = self._check_out_dir()  # every rank, read-only
        self._barrier()
        if info.is_main:
            self._prepare_out_dir(checkpoint)
        self._barrier()

        if self.device.type == "cuda":
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        seed_everything(cfg.seed + info.rank)
        emulated = bf16_emulation_note(self.device) if cfg.bf16 else None
        self.autocast_bf16 = cfg.bf16 and emulated is None
        if emulated and info.is_main:
            print(f"bf16 autocast off: {emulated}; training in float32")
        model = self.model
        if checkpoint is None and cfg.init_weights:
            self._load_init_weights(model, cfg.init_weights)
        self.teacher = None
        if teacher_cfg is not None:
            self.teacher = load_teacher_model(cfg.stage, cfg.teacher, cfg.teacher_model, device=self.device)
        configure_trainable(model, cfg.stage, cfg.remove_layers)
        trained: nn.Module = model
        if cfg.center_weight > 0:
            self.center = trained = CenterSupervised(model, cfg.center_layer, edges=cfg.center_edge_weight > 0)
        trained.to(self.device)
        trained.train()
        self.optimizer, self.scheduler = build_optimizer(trained, cfg)
        self.trainable = [p for g in self.optimizer.param_groups for p in g["params"]]
        # rank 0 alone: its weights are the ones DDP broadcasts, and only it saves
        self.ema = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay > 0 and info.is_main else None
        start_epoch, resumed_from = 1, None
        if checkpoint is not None:
            resumed_from, state = checkpoint
            self._restore(state)
            start_epoch = self.epoch + 1
            if info.is_main:
                print(f"resuming from {resumed_from} (epoch {self.epoch}, step {self.global_step})")
        self.net: nn.Module = trained
        if info.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                trained, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

        dataset = self._dataset
        if callable(dataset) and not isinstance(dataset, Dataset):
            dataset = dataset()  # a factory: build the data only once the folder is known to be usable
        self.dataset = dataset
        self.sampler = ShardedEpochSampler(len(dataset), cfg.seed, info.rank, info.world_size, cfg.shuffle)
        if len(self.sampler) // cfg.batch_size == 0:
            raise ConfigError(
                f"{len(dataset)} samples per epoch over {info.world_size} process(es) do not fill one batch of "
                f"{cfg.batch_size}; raise the samples per epoch or lower train.batch_size"
            )
        if info.is_main:
            self._tb = _summary_writer(self.out_dir / "tb", self.global_step + 1 if resumed_from else None)

        for epoch in range(start_epoch, cfg.epochs + 1):
            self._train_epoch(epoch)
            self.scheduler.step()
            self.epoch = epoch
            self._save_checkpoint(epoch)

        model_path = None
        if info.is_main:
            if self.ema is not None:
                save_checkpoint(model, self.out_dir / "model_last_step.safetensors", overwrite=True,
                                epoch=str(self.epoch), stage=cfg.stage)
                model.load_state_dict(self.ema.averaged_model_state(model))  # the returned model is the average
            model_path = save_checkpoint(model, self.out_dir / "model.safetensors", overwrite=True,
                                         epoch=str(self.epoch), stage=cfg.stage,
                                         **({"ema_decay": str(cfg.ema_decay)} if self.ema is not None else {}))
        self._barrier()
        last = self.ckpt_dir / "last.pt"
        return TrainResult(self.out_dir, self.epoch, self.global_step, model_path,
                           last if last.exists() else None, resumed_from)

    def preflight(self):
        """Check the model, stage and teacher settings (no file written, no weights loaded);
        returns the teacher's architecture (None without a teacher)."""
        from ..models.mixvit import MixViT
        from .distill import check_distillation, teacher_config

        cfg = self.config
        if self.dist is None:
            self.dist = distributed_env()
        if cfg.stage == "score" and getattr(self.model, "score_head", None) is None:
            raise ConfigError("stage 'score' needs a model with a score head (model config score_head: true)")
        if isinstance(self.model, MixViT) and (cfg.stage != "gt" or cfg.dfl_weight > 0 or cfg.center_weight > 0):
            raise ConfigError("a MixViT (teacher) model trains with stage 'gt', dfl_weight 0 and center_weight 0 only")
        if cfg.center_weight > 0:
            depth = self.model.config.depth
            if cfg.stage == "score":
                raise ConfigError("center_weight supervises the box stages; set it to 0 for stage 'score'")
            if not -depth <= cfg.center_layer < depth:
                raise ConfigError(f"center_layer {cfg.center_layer} is not a block of this {depth}-block model")
        if cfg.center_edge_weight > 0 and cfg.center_weight <= 0:
            raise ConfigError("center_edge_weight trains the centre head's edges: it needs center_weight > 0")
        teacher_cfg = teacher_config(cfg.stage, cfg.teacher, cfg.teacher_model) if cfg.teacher else None
        check_distillation(self.model.config, teacher_cfg, cfg)
        return teacher_cfg

    # -- output folder -----------------------------------------------------------------------------------
    def _check_out_dir(self) -> tuple[Path, dict] | None:
        """Decide what to do with ``out_dir`` without touching it; returns the checkpoint to resume."""
        out = self.out_dir
        if out.exists() and not out.is_dir():
            raise TrainingError(f"--out {out} exists and is not a directory")
        entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        if not entries or self.overwrite:
            return None
        current = self.run_config()
        run_file = out / "run_config.json"
        saved = None
        if run_file.is_file():
            try:
                saved = json.loads(run_file.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise TrainingError(f"{run_file} is unreadable ({exc}); pass --overwrite to start over") from None
        found = find_last_checkpoint(self.ckpt_dir)
        if not self.resume:
            if saved is None and found is None:
                shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
                raise TrainingError(
                    f"--out {out} is not empty ({shown}); choose a new or empty folder, or pass --overwrite "
                    "(only training outputs there are replaced; other files are kept)"
                )
            reference = found[1]["config"] if found else saved
            changed = config_changes(reference, current)
            done = f"{found[1]['epoch']} epoch(s) done" if found else "no complete epoch"
            if [k for k in changed if k not in RESUMABLE_KEYS]:
                raise TrainingError(
                    f"--out {out} holds a different training run ({done}; differing settings: {', '.join(changed)}); "
                    "choose another folder, or pass --overwrite to replace its checkpoints and logs"
                )
            raise TrainingError(
                f"--out {out} already holds this training run ({done}); pass --resume to continue it "
                "or --overwrite to start over"
            )
        if saved is None and found is None:
            raise TrainingError(
                f"cannot resume: --out {out} holds no training run (no run_config.json, no checkpoints)"
            )
        reference = found[1]["config"] if found else saved
        changed = config_changes(reference, current)
        roots = [k for k in changed if k.startswith("data.") and k.endswith(".root")]
        blocking = [k for k in changed if k not in RESUMABLE_KEYS and k not in roots]
        if blocking:
            ref, cur = flatten(reference), flatten(current)
            detail = "; ".join(f"{k}: {ref.get(k, '<absent>')!r} -> {cur.get(k, '<absent>')!r}" for k in blocking)
            raise ConfigError(
                f"cannot resume the run in {out} with changed settings ({detail}); use the original settings, "
                "or a new --out folder (only these may change on resume: "
                + ", ".join(RESUMABLE_KEYS) + ", dataset roots)"
            )
        if roots and self.dist.is_main:
            warnings.warn(f"resuming with different dataset roots ({', '.join(roots)})", stacklevel=3)
        if found is not None:
            old_world = len(found[1].get("rng") or [])
            if old_world and old_world != self.dist.world_size and self.dist.is_main:
                warnings.warn(
                    f"resuming a {old_world}-process run with {self.dist.world_size} process(es): "
                    "training continues but is not identical to an uninterrupted run",
                    stacklevel=3,
                )
        return found

    def _prepare_out_dir(self, checkpoint: tuple[Path, dict] | None) -> None:
        out = self.out_dir
        out.mkdir(parents=True, exist_ok=True)
        if self.overwrite:
            self._remove_outputs()
        if self.ckpt_dir.is_dir():  # temp files of a save that was killed
            for p in self.ckpt_dir.iterdir():
                if _TMP_FILE.match(p.name):
                    p.unlink()
        done = checkpoint[1]["epoch"] if checkpoint else 0
        self._truncate_log(done)
        cfg = self.run_config()
        atomic_write_text(out / "run_config.json", json.dumps(cfg, indent=2, sort_keys=True) + "\n")

    def _remove_outputs(self) -> None:
        """--overwrite: delete what a training run writes here, nothing else."""
        for _, p in checkpoint_epochs(self.ckpt_dir):
            p.unlink()
        if self.ckpt_dir.is_dir():
            for p in self.ckpt_dir.iterdir():
                if p.name == "last.pt" or _TMP_FILE.match(p.name):
                    p.unlink()
            if not any(self.ckpt_dir.iterdir()):
                self.ckpt_dir.rmdir()
        tb = self.out_dir / "tb"
        if tb.is_dir():
            for p in tb.glob("events.out.tfevents.*"):
                p.unlink()
        for name in ("log.csv", "run_config.json", "model.safetensors", "model_last_step.safetensors"):
            p = self.out_dir / name
            if p.is_file():
                p.unlink()

    def _truncate_log(self, epochs_done: int) -> None:
        """Keep the rows of completed (checkpointed) epochs: a resumed run appends after them."""
        if not self.log_path.is_file():
            return
        with open(self.log_path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = tuple(reader.fieldnames or ())
        keep = [r for r in rows if r.get("epoch", "").isdigit() and int(r["epoch"]) <= epochs_done]
        if len(keep) == len(rows) and header == CSV_COLUMNS:
            return  # (a log written by an older version gets today's columns, its values kept)

        def write(f):
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(keep)

        atomic_write(self.log_path, write, binary=False)

    def _load_init_weights(self, model: nn.Module, path: str) -> None:
        cfg = self.config
        missing = init_from_checkpoint(model, path, remove=cfg.init_remove_layers, slice_mlp_hidden=cfg.init_slice_mlp,
                                       backbone_only=cfg.init_backbone_only)
        if missing and self.dist.is_main:
            print(f"init_weights {path}: {len(missing)} tensors keep their fresh initialisation "
                  f"({', '.join(sorted({k.split('.')[0] for k in missing}))})")

    # -- state ------------------------------------------------------------------------------------------
    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if self.center is not None:
            self.center.center_head.load_state_dict(state["center_head"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        rngs = state.get("rng") or []
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank])
        else:
            seed_everything(derive_seed(self.config.seed, self.epoch, self.dist.rank))

    def _save_checkpoint(self, epoch: int) -> None:
        rngs = [rng_state()]
        if self.dist.enabled:
            gathered: list = [None] * self.dist.world_size
            dist.all_gather_object(gathered, rngs[0])
            rngs = gathered
        self._barrier()
        if self.dist.is_main:
            state = {
                "format": TRAINING_FORMAT,
                "version": CHECKPOINT_VERSION,
                "epoch": epoch,
                "global_step": self.global_step,
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                **({"center_head": {k: v.detach().cpu() for k, v in self.center.center_head.state_dict().items()}}
                   if self.center is not None else {}),
                **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": rngs,
                "world_size": self.dist.world_size,
                "config": self.run_config(),
            }
            path = atomic_torch_save(state, self.ckpt_dir / f"epoch_{epoch:04d}.pt")
            _atomic_alias(path, self.ckpt_dir / "last.pt")
            keep = self.config.keep_checkpoints
            if keep > 0:
                for _, old in checkpoint_epochs(self.ckpt_dir)[:-keep]:
                    old.unlink()
        self._barrier()

    # -- one epoch --------------------------------------------------------------------------------------
    def _loader(self, epoch: int) -> DataLoader:
        cfg = self.config
        g = torch.Generator()
        g.manual_seed(derive_seed(cfg.seed, epoch, self.dist.rank, 0x4C44))
        return DataLoader(
            self.dataset,
            batch_size=cfg.batch_size,
            sampler=self.sampler,
            num_workers=cfg.workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
            worker_init_fn=_seed_worker,
            generator=g,
        )

    def _train_epoch(self, epoch: int) -> None:
        cfg, info = self.config, self.dist
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.gamma = gamma_schedule(epoch, cfg.gamma_epochs, cfg.gamma_official) if cfg.remove_layers else None
        self.sampler.set_epoch(epoch)
        loader = self._loader(epoch)
        n_iters = len(loader)
        self.net.train()
        bar = None
        if self.progress and info.is_main:
            from tqdm import tqdm

            bar = tqdm(total=n_iters, desc=f"epoch {epoch}/{cfg.epochs}", unit="it", leave=False, dynamic_ncols=True)
        window = _Window(self.device)
        epoch_resampled, epoch_losses = 0, []
        try:
            for it, batch in enumerate(loader, 1):
                parts = self._step(batch)
                resampled = batch.get("resampled", torch.zeros(()))
                window.add(parts, resampled, int(batch["search"].shape[0]))
                if it % cfg.log_every == 0 or it == n_iters:
                    means, rate, res = window.reduce(info)
                    window.reset()
                    epoch_resampled += res
                    epoch_losses.append(means["loss"])
                    if not math.isfinite(means["loss"]):
                        raise TrainingError(
                            f"the loss became {means['loss']} at epoch {epoch}, iteration {it} "
                            f"(step {self.global_step}); "
                            "the last complete checkpoint is in " + str(self.ckpt_dir)
                        )
                    if info.is_main:
                        self._log_row(epoch, it, means, rate, res)
                if bar is not None:
                    bar.update(1)
                    if it % cfg.log_every == 0 or it == n_iters:
                        bar.set_postfix(loss=f"{epoch_losses[-1]:.4f}")
        finally:
            if bar is not None:
                bar.close()
        if info.is_main:
            mean_loss = sum(epoch_losses) / max(len(epoch_losses), 1)
            if self._tb is not None:
                self._tb.add_scalar("epoch/resampled", epoch_resampled, epoch)
                self._tb.add_scalar("epoch/loss", mean_loss, epoch)
            if self.progress:
                print(f"epoch {epoch}/{cfg.epochs}: loss {mean_loss:.4f}, {n_iters} iterations, "
                      f"{epoch_resampled} corrupt/invalid draws resampled")

    def _step(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        cfg = self.config
        nb = self.device.type == "cuda"
        template = batch["template"].to(self.device, non_blocking=nb)
        # samples without an online template (sampler online_template='template') reuse the template:
        # MixFormerV2 then encodes it once; other networks (MixViT, teachers) are given it twice
        online = batch["online_template"].to(self.device, non_blocking=nb) if "online_template" in batch else None
        given = template if online is None else online
        student_online = online if isinstance(self.model, MixFormerV2) else given
        search = batch["search"].to(self.device, non_blocking=nb)
        anno = batch["search_anno"].to(self.device, non_blocking=nb)
        label = batch["label"].to(self.device, non_blocking=nb).float().flatten()
        if not self._checked_shapes:
            self._check_shapes(template, given, search)
        self.optimizer.zero_grad(set_to_none=True)
        gammas = (layer_gammas(self.model.config.depth, cfg.remove_layers, self.gamma)
                  if self.gamma is not None else None)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast_bf16):
            out = self.net(template, student_online, search,
                           **student_forward_kwargs(self.model, cfg.stage, cfg.stage == "score", gammas,
                                                    features=bool(self.teacher is not None and cfg.distill_layers_student)))
            # a teacher sees the RGB crop only (a student's motion_input adds the frame difference)
            teacher_out = (run_teacher(cfg.stage, self.teacher, template, given, search[:, :3])
                           if self.teacher is not None else None)
        positive = (label > 0.5).float()
        if cfg.stage != "score":
            loss, parts = box_losses(out["pred_boxes"], anno, cfg.iou_type, cfg.iou_weight, cfg.l1_weight,
                                     weight=positive)
            if cfg.dfl_weight > 0:
                logits = {e: out[f"prob_{e}"] for e in ("l", "t", "r", "b")}  # softmax=False: logits
                ld = edge_distribution_loss(logits, anno, weight=positive)
                loss = loss + cfg.dfl_weight * ld
                parts["loss_dfl"] = ld.detach()
            if cfg.center_weight > 0:
                lc = center_loss(out["center_logits"], anno, weight=positive)
                loss = loss + cfg.center_weight * lc
                parts["loss_center"] = lc.detach()
            if cfg.center_edge_weight > 0:
                le = center_edge_loss(out["center_edges"], anno, weight=positive)
                loss = loss + cfg.center_edge_weight * le
                parts["loss_center_edge"] = le.detach()
            if teacher_out is not None:
                distilled = distillation_losses(cfg.stage, out, teacher_out, self.teacher,
                                                cfg.distill_layers_student, cfg.distill_layers_teacher)
                loss = loss + cfg.distill_weight * distilled["loss_distill"]
                if "loss_feat" in distilled:
                    loss = loss + cfg.feat_weight * distilled["loss_feat"]
                parts.update({k: v.detach() for k, v in distilled.items()})
        else:
            with torch.no_grad():
                _, parts = box_losses(out["pred_boxes"], anno, cfg.iou_type, cfg.iou_weight, cfg.l1_weight,
                                      weight=positive)
            ls = score_loss(out["pred_scores"], label)
            loss = cfg.score_weight * ls
            parts["loss_score"] = ls.detach()
        loss.backward()
        if cfg.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, cfg.grad_clip)
        else:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, float("inf"))  # the norm, no clipping
        self.optimizer.step()
        self.global_step += 1
        if self.ema is not None:
            self.ema.update(self.global_step)
        parts["loss"] = loss.detach()
        parts["grad_norm"] = grad_norm.detach()
        return parts

    def _check_shapes(self, template: Tensor, online: Tensor, search: Tensor) -> None:
        mc = self.model.config
        for what, x, channels, size in (("template", template, 3, mc.template_size),
                                        ("online_template", online, 3, mc.template_size),
                                        ("search", search, mc.search_channels, mc.search_size)):
            if x.dim() != 4 or tuple(x.shape[1:]) != (channels, size, size):
                raise ConfigError(
                    f"the data gives {what} crops of shape {tuple(x.shape[1:])} but the model expects "
                    f"{(channels, size, size)}; make the processing sizes match the model's template_size / "
                    "search_size, and processing.motion_input the model's motion_input"
                )
        self._checked_shapes = True

    def _log_row(self, epoch: int, it: int, means: Mapping[str, float], rate: float, resampled: int) -> None:
        groups = self.optimizer.param_groups
        lr = groups[0]["lr"]
        lr_bb = groups[1]["lr"] if len(groups) > 1 else None
        row = {
            "epoch": epoch, "iter": it, "step": self.global_step, "lr": float(lr),
            "lr_backbone": None if lr_bb is None else float(lr_bb),
            "samples_per_s": round(rate, 2), "resampled": resampled,
            **{k: float(means[k]) for k in _METRICS},
        }
        if self.config.stage != "score":
            row["loss_score"] = None
        if self.config.stage == "score" or self.config.dfl_weight <= 0:
            row["loss_dfl"] = None
        if self.config.stage == "score" or self.config.center_weight <= 0:
            row["loss_center"] = None
        if self.config.stage == "score" or self.config.center_edge_weight <= 0:
            row["loss_center_edge"] = None
        if self.teacher is None:
            row["loss_distill"] = None
        if not self.config.distill_layers_student:
            row["loss_feat"] = None
        row["gamma"] = self.gamma
        new = not self.log_path.exists()
        with open(self.log_path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(CSV_COLUMNS)
            w.writerow([_fmt(row.get(c)) for c in CSV_COLUMNS])
        if self._tb is not None:
            for k in _METRICS:
                if row.get(k) is not None:
                    self._tb.add_scalar(f"train/{k}", row[k], self.global_step)
            self._tb.add_scalar("train/lr", lr, self.global_step)
            self._tb.add_scalar("train/samples_per_s", rate, self.global_step)
            self._tb.add_scalar("train/resampled", resampled, self.global_step)


# ------------------------------------------------------------------------------------------------
# recipe entry point (the CLI's `train`)
# ------------------------------------------------------------------------------------------------
def build_trainable(config) -> nn.Module:
    """A fresh MixFormerV2 for a ModelConfig, a MixViT teacher for a MixViTConfig."""
    from ..models.mixvit import MixViT, MixViTConfig

    return MixViT(config) if isinstance(config, MixViTConfig) else MixFormerV2(config)


def train_from_recipe(
    recipe: Any,
    out_dir: str | os.PathLike,
    *,
    data_roots: Mapping[str, str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    epochs: int | None = None,
    workers: int | None = None,
    device: str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train as a recipe says (see :mod:`.recipes`); ``data_roots`` maps dataset names to folders."""
    from .recipes import Recipe, build_dataset, load_recipe

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    if data_roots:
        recipe = recipe.with_data_roots(data_roots)
    recipe.check_roots()
    train = recipe.train
    changes = {k: v for k, v in (("epochs", epochs), ("workers", workers)) if v is not None}
    if changes:
        train = train.replace(**changes)
    info = distributed_env()
    seed_everything(train.seed + info.rank)  # model initialisation (DDP broadcasts rank 0's weights)
    model = build_trainable(recipe.model)
    trainer = Trainer(
        model,
        lambda: build_dataset(recipe),
        train,
        out_dir,
        device=device,
        resume=resume,
        overwrite=overwrite,
        data_config=recipe.data_config(),
        progress=progress,
    )
    return trainer.fit()
