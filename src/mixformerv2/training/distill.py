"""Distillation-based model reduction (paper §3): teachers, checks and losses of the stages.

Stages (``TrainConfig.stage``):

* ``dense_to_sparse`` (stage 1): a MixViT teacher's two 2-D corner maps are turned into the
  four 1-D edge distributions (marginals) and distilled into the student's distributions,
  KL(teacher ‖ student) (paper eq. 4-5), plus the ground-truth CIoU + L1 (eq. 10).
* ``deep_to_shallow`` (stage 2, also MLP reduction): a MixFormerV2 teacher; logits KL on the
  four distributions + feature mimicking (MSE of matched block outputs) + ground truth. Layers
  listed in ``remove_layers`` are faded out by the gate gamma (cosine 1 -> 0 over
  ``gamma_epochs``, paper eq. 9) and frozen; the next stage removes them physically.

Student bins vs teacher bins: when the student has a different number of bins than the
teacher's map side (or bins), each teacher bin's probability is split linearly between the two
student bins around its position. That keeps the mass and the expectation (the box edge) of
the teacher's distribution, which the KL then matches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..errors import ConfigError
from ..models.mixvit import MixViT, MixViTConfig, corner_marginals
from .losses import distribution_kl, feature_mimic_loss
from .pruning import check_layers

DISTILL_STAGES = ("dense_to_sparse", "deep_to_shallow")
TEACHER_KIND = {"dense_to_sparse": "mixvit", "deep_to_shallow": "mixformerv2"}


def teacher_config(stage: str, path: str | os.PathLike, teacher_model: Any = None) -> ModelConfig | MixViTConfig:
    """The teacher's architecture without loading its weights: from our safetensors metadata,
    else from ``teacher_model`` (a preset name or fields), else (MixFormerV2) from the shapes."""
    import json

    from ..models.checkpoints import read_metadata, read_state_dict, resolve_config

    kind = TEACHER_KIND[stage]
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"stage {stage}: teacher checkpoint not found: {path}")
    meta = read_metadata(path)
    found = meta.get("architecture", "mixformerv2") if meta else None
    if found is not None and found != kind:
        raise ConfigError(f"stage {stage} needs a {kind} teacher but {path} holds a {found} model")
    if kind == "mixvit":
        if teacher_model is not None:
            return MixViTConfig.from_dict(teacher_model)
        if "config" in meta:
            return MixViTConfig.from_dict(json.loads(meta["config"]))
        return MixViTConfig.from_dict("mixvit-b")
    if teacher_model is not None:
        if isinstance(teacher_model, str):
            from ..config import get_preset

            return get_preset(teacher_model).model
        return ModelConfig.from_dict(teacher_model)
    state, embedded = read_state_dict(path)
    return resolve_config(state, embedded, None, None)


def load_teacher_model(stage: str, path: str | os.PathLike, teacher_model: Any = None,
                       device: str | torch.device = "cpu") -> nn.Module:
    """The frozen teacher of ``stage`` in eval mode (it stays in eval mode, as official)."""
    from ..models.checkpoints import load_checkpoint
    from ..models.mixvit import load_teacher

    config = teacher_config(stage, path, teacher_model)
    if isinstance(config, MixViTConfig):
        model = load_teacher(path, config, device=device)
    else:
        model = load_checkpoint(path, config=config, device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def check_distillation(student: ModelConfig, teacher: ModelConfig | MixViTConfig | None, train) -> None:
    """Everything that can be wrong between a student, its teacher and the stage settings,
    checked before any training starts. ``train`` is a TrainConfig."""
    stage = train.stage
    problems = []
    if train.remove_layers:
        try:
            check_layers(student.depth, train.remove_layers)
        except ConfigError as exc:
            problems.append(f"remove_layers: {exc}")
        if stage != "deep_to_shallow":
            problems.append(f"remove_layers is only used by stage deep_to_shallow (stage is {stage})")
        elif len(train.remove_layers) >= student.depth:
            problems.append(f"remove_layers {list(train.remove_layers)} would remove all {student.depth} layers")
    if stage not in DISTILL_STAGES:
        if train.teacher is not None:
            problems.append(f"stage {stage} takes no teacher (teacher: {train.teacher})")
        if train.distill_layers_student or train.distill_layers_teacher:
            problems.append(f"distill_layers_* are only used by stage deep_to_shallow (stage is {stage})")
        if problems:
            raise ConfigError("; ".join(problems))
        return
    if train.teacher is None:
        problems.append(f"stage {stage} needs a teacher checkpoint (train.teacher)")
    if teacher is not None:
        for what in ("template_size", "search_size"):
            if getattr(student, what) != getattr(teacher, what):
                problems.append(f"teacher/student size mismatch: teacher {what} {getattr(teacher, what)}, "
                                f"student {getattr(student, what)} (both see the same crops)")
    if stage == "dense_to_sparse":
        if teacher is not None and not isinstance(teacher, MixViTConfig):
            problems.append("stage dense_to_sparse needs a MixViT teacher")
        if train.distill_layers_student or train.distill_layers_teacher:
            problems.append("dense_to_sparse distils the distributions only; distill_layers_* must be empty")
    else:
        if teacher is not None and not isinstance(teacher, ModelConfig):
            problems.append("stage deep_to_shallow needs a MixFormerV2 teacher")
        s_layers, t_layers = list(train.distill_layers_student), list(train.distill_layers_teacher)
        if len(s_layers) != len(t_layers):
            problems.append(f"distill_layers_student {s_layers} and distill_layers_teacher {t_layers} "
                            "must pair up (same length)")
        if len(set(s_layers)) != len(s_layers) or any(not 0 <= i < student.depth for i in s_layers):
            problems.append(f"distill_layers_student {s_layers}: not distinct layers of the {student.depth}-layer student")
        if teacher is not None and isinstance(teacher, ModelConfig):
            if len(set(t_layers)) != len(t_layers) or any(not 0 <= i < teacher.depth for i in t_layers):
                problems.append(f"distill_layers_teacher {t_layers}: not distinct layers of the "
                                f"{teacher.depth}-layer teacher")
            if s_layers and teacher.embed_dim != student.embed_dim:
                problems.append(f"teacher/student size mismatch: feature mimicking needs equal widths "
                                f"(teacher {teacher.embed_dim}, student {student.embed_dim})")
            if s_layers and teacher.patch_size != student.patch_size:
                problems.append(f"teacher/student size mismatch: patch {teacher.patch_size} vs {student.patch_size} "
                                "gives different token counts for feature mimicking")
        if train.feat_weight > 0 and not s_layers:
            problems.append("feat_weight > 0 but no distill_layers_student / distill_layers_teacher are given")
        overlap = sorted(set(s_layers) & set(train.remove_layers))
        if overlap:
            problems.append(f"layers {overlap} are both removed and feature-mimicked")
    if problems:
        raise ConfigError(f"stage {stage}: " + "; ".join(problems))


def resample_bins(probs: Tensor, bins: int) -> Tensor:
    """(B, F) distributions over positions i/F -> (B, bins) over k/bins, each mass split linearly
    between its two neighbouring bins (mass and mean kept; the identity when F == bins)."""
    src = probs.shape[-1]
    if src == bins:
        return probs
    x = torch.arange(src, dtype=torch.float64, device=probs.device) * (bins / src)
    lo = x.floor().clamp(max=bins - 1)
    w = (x - lo).clamp(0.0, 1.0)
    hi = (lo + 1).clamp(max=bins - 1)
    matrix = torch.zeros(src, bins, dtype=torch.float64, device=probs.device)
    rows = torch.arange(src, device=probs.device)
    matrix.index_put_((rows, lo.long()), 1.0 - w, accumulate=True)
    matrix.index_put_((rows, hi.long()), w, accumulate=True)
    return (probs.double() @ matrix).to(probs.dtype)


def teacher_distributions(stage: str, teacher_out: dict, teacher: nn.Module, bins: int) -> dict[str, Tensor]:
    """The teacher's four edge distributions (l, t, r, b) on the student's bins."""
    if stage == "dense_to_sparse":
        probs = corner_marginals(teacher_out["prob_tl"], teacher_out["prob_br"], teacher.box_head.map_size)
    else:
        probs = {e: teacher_out[f"prob_{e}"] for e in ("l", "t", "r", "b")}
    return {e: resample_bins(p.float(), bins) for e, p in probs.items()}


def distillation_losses(stage: str, student_out: dict, teacher_out: dict, teacher: nn.Module,
                        student_layers: Sequence[int], teacher_layers: Sequence[int]) -> dict[str, Tensor]:
    """``loss_distill`` (KL of the distributions) and, for deep_to_shallow with layer pairs, ``loss_feat``."""
    logits = {e: student_out[f"prob_{e}"].float() for e in ("l", "t", "r", "b")}  # softmax=False: logits
    bins = logits["l"].shape[-1]
    parts = {"loss_distill": distribution_kl(logits, teacher_distributions(stage, teacher_out, teacher, bins))}
    if stage == "deep_to_shallow" and student_layers:
        parts["loss_feat"] = feature_mimic_loss(
            [f.float() for f in student_out["distill_feat_list"]],
            [f.float() for f in teacher_out["distill_feat_list"]],
            list(student_layers), list(teacher_layers),
        )
    return parts


def run_teacher(stage: str, teacher: nn.Module, template: Tensor, online: Tensor, search: Tensor) -> dict:
    with torch.no_grad():
        if isinstance(teacher, MixViT):
            return teacher(template, online, search, softmax=True)
        return teacher(template, online, search, softmax=True, run_score_head=False)


def fit_init_state(state: Mapping[str, Tensor], own: Mapping[str, Tensor], *, remove: Sequence[int] = (),
                   slice_mlp_hidden: bool = False, backbone_only: bool = False,
                   what: str = "init weights") -> dict[str, Tensor]:
    """``state`` transformed to initialise a model whose state dict is ``own``:

    * ``remove``: drop these blocks and renumber the rest (the depth-pruned student, stage 2b);
    * ``slice_mlp_hidden``: keep the first hidden units of each MLP (MLP reduction);
    * ``backbone_only``: only ``backbone.*`` tensors that fit (a teacher's or a pre-trained ViT's
      backbone; position tables stay the model's own), e.g. stage 1.

    Everything else must fit exactly (a missing score head is allowed); raises CheckpointError.
    """
    from ..errors import CheckpointError
    from .pruning import remove_layers, slice_mlp

    if remove:
        depth = len({k.split(".")[2] for k in state if k.startswith("backbone.blocks.")})
        try:
            check_layers(depth, remove)
        except ConfigError as exc:
            raise CheckpointError(f"{what}: init_remove_layers: {exc}") from None
        state = remove_layers(state, remove)
    if slice_mlp_hidden:
        key = "backbone.blocks.0.mlp.fc1.weight"
        if key not in own or key not in state:
            raise CheckpointError(f"{what}: init_slice_mlp needs MLP blocks on both sides")
        try:
            state = slice_mlp(state, own[key].shape[0])
        except ConfigError as exc:
            raise CheckpointError(f"{what}: {exc}") from None
    if backbone_only:
        if not any(k.startswith("backbone.") for k in state):  # a bare ViT, e.g. MAE's {'model': {'blocks.0...'}}
            state = {f"backbone.{k}": v for k, v in state.items()}
        skip = ("pos_embed", "cls_token", "mask_token", "backbone.norm.", "backbone.head.")
        state = {k: v for k, v in state.items() if k.startswith("backbone.") and k in own
                 and not any(s in k for s in skip) and v.shape == own[k].shape}
        if not state:
            raise CheckpointError(f"{what}: no backbone tensor fits the model")
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k}: {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in state if k in own and state[k].shape != own[k].shape]
    missing = [] if backbone_only else [k for k in sorted(set(own) - set(state)) if not k.startswith("score_head.")]
    if unexpected or wrong or missing:
        raise CheckpointError(
            f"{what} do not fit the model"
            + (f" (after removing layers {list(remove)})" if remove else "")
            + (" (after slicing the MLPs)" if slice_mlp_hidden else "") + ": "
            + "; ".join(f"{t}: {', '.join(v[:6])}{' ...' if len(v) > 6 else ''}"
                        for t, v in (("unexpected", unexpected), ("shape mismatch", wrong), ("missing", missing)) if v)
        )
    return dict(state)


def init_from_checkpoint(model: nn.Module, path: str | os.PathLike, *, remove: Sequence[int] = (),
                         slice_mlp_hidden: bool = False, backbone_only: bool = False) -> list[str]:
    """Initialise ``model`` from a checkpoint through :func:`fit_init_state`; returns the names of
    the model's tensors left as they were."""
    from ..models.checkpoints import read_state_dict

    state, _ = read_state_dict(path)
    own = model.state_dict()
    state = fit_init_state(state, own, remove=remove, slice_mlp_hidden=slice_mlp_hidden,
                           backbone_only=backbone_only, what=f"init weights {path}")
    model.load_state_dict(state, strict=False)
    return sorted(set(own) - set(state))


def student_forward_kwargs(model: nn.Module, stage: str, run_score_head: bool, gammas: list[float] | None,
                           features: bool = False) -> dict:
    """Keyword arguments of the student's forward; block outputs only when feature mimicking needs them."""
    if isinstance(model, MixViT):
        return {"softmax": False}
    return {"softmax": False, "run_score_head": run_score_head, "layer_gammas": gammas, "features": features}


__all__ = [
    "DISTILL_STAGES", "check_distillation", "distillation_losses", "fit_init_state", "init_from_checkpoint",
    "load_teacher_model",
    "resample_bins", "run_teacher", "teacher_config", "teacher_distributions",
]
