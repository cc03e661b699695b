"""Numeric conformance of the network with the official implementation (fixture-driven)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fixtures_official import (
    assert_bounded,
    assert_loss,
    assert_unbounded,
    case_ids,
    cases_of,
    discover,
    fixtures_dir,
    require,
)
from mixformerv2.models import load_checkpoint
from mixformerv2.models.mixformerv2 import EDGE_NAMES
from mixformerv2.models.vit import sincos_pos_embed
from mixformerv2.training.losses import distribution_kl, feature_mimic_loss

pytestmark = pytest.mark.conformance

STUDENTS = cases_of("student")
ONLINE = cases_of("online")
PRUNING = cases_of("pruning")
KNOWN_KINDS = {"student", "online", "pruning", "teacher", "tracker"}


def test_fixture_folder_has_known_cases():
    cases = discover()
    kinds = {c.name: c.kind for c in cases}
    assert all(k in KNOWN_KINDS for k in kinds.values()), f"unrecognised fixture cases: {kinds}"
    assert {"student", "online", "tracker"} <= set(kinds.values()), kinds


def _load(case, which: str):
    path = case.path / ("checkpoint.pth" if which == "pth" else "weights.safetensors")
    return load_checkpoint(path, config=case.model_config)


def _inputs(case):
    io = case.io
    return io["in.template"], io["in.online_template"], io["in.search"]


def _check_heads(out, ref: dict, what: str, logits: dict | None = None) -> None:
    assert_bounded(out["pred_boxes"], ref["pred_boxes"], f"{what} pred_boxes")
    for e in EDGE_NAMES:
        assert_bounded(out[f"prob_{e}"], ref[f"prob_{e}"], f"{what} prob_{e}")
    if "reg_tokens" in ref:
        assert_unbounded(out["reg_tokens"], ref["reg_tokens"], f"{what} reg_tokens")
    if "pred_scores" in ref:
        assert_bounded(out["pred_scores"], ref["pred_scores"], f"{what} pred_scores")
    for i in range(len([k for k in ref if k.startswith("distill_feat.")])):
        assert_unbounded(out["distill_feat_list"][i], ref[f"distill_feat.{i}"], f"{what} distill_feat.{i}")


def _check_logits(out, ref: dict, what: str) -> None:
    for e in EDGE_NAMES:
        assert_unbounded(out[f"prob_{e}"], ref[e], f"{what} logits.{e}")


def _tokens_2d(tokens: torch.Tensor, side: int) -> torch.Tensor:
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, side, side)


@pytest.mark.parametrize("which", ["pth", "safetensors"])
@pytest.mark.parametrize("case", STUDENTS, ids=case_ids(STUDENTS))
@torch.no_grad()
def test_student_training_forward(case, which):
    case = require(case)
    model = _load(case, which)
    cfg = model.config
    out = model(*_inputs(case), softmax=True)
    _check_heads(out, case.prefixed("out."), case.name)
    _check_logits(model(*_inputs(case), softmax=False), case.prefixed("logits."), case.name)
    # pred_boxes are identical in both modes
    assert torch.equal(model(*_inputs(case), softmax=False)["pred_boxes"], out["pred_boxes"])

    aux = case.prefixed("aux.")
    nt, ns = cfg.num_template_tokens, cfg.num_search_tokens
    last = out["distill_feat_list"][-1]
    if "backbone_template_2d" in aux:
        assert_unbounded(_tokens_2d(last[:, :nt], cfg.feat_sz_t), aux["backbone_template_2d"], "template_2d")
        assert_unbounded(_tokens_2d(last[:, nt : 2 * nt], cfg.feat_sz_t), aux["backbone_online_template_2d"], "online_2d")
        assert_unbounded(_tokens_2d(last[:, 2 * nt : 2 * nt + ns], cfg.feat_sz_s), aux["backbone_search_2d"], "search_2d")
    if "pred_boxes_xyxy" in aux:
        cx, cy, w, h = out["pred_boxes"][:, 0].unbind(-1)
        xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
        assert_bounded(xyxy, aux["pred_boxes_xyxy"], "pred_boxes_xyxy")
    if "box_head_bin_coords" in aux:
        assert_bounded(model.box_head.bin_coords[None], aux["box_head_bin_coords"], "bin coords")
    for grid, key in ((cfg.feat_sz_t, "official_sincos_pos_embed_t"), (cfg.feat_sz_s, "official_sincos_pos_embed_s")):
        if key in aux:
            assert_bounded(sincos_pos_embed(cfg.embed_dim, grid)[None], aux[key], key)


@pytest.mark.parametrize("case", STUDENTS + ONLINE, ids=case_ids(STUDENTS + ONLINE))
@torch.no_grad()
def test_cached_step_equals_training_forward(case):
    """Batched cache path vs batched full forward (within the fixture tolerances)."""
    case = require(case)
    model = _load(case, "safetensors")
    t, ot, s = _inputs(case)
    full = model(t, ot, s)
    fast = model.step(s, model.encode_templates(t, ot))
    for key in ("pred_boxes", "pred_scores", *[f"prob_{e}" for e in EDGE_NAMES]):
        if key in full:
            assert_bounded(fast[key], full[key], f"step {key}")
    assert_unbounded(fast["reg_tokens"], full["reg_tokens"], "step reg_tokens")


@pytest.mark.parametrize("which", ["pth", "safetensors"])
@pytest.mark.parametrize("case", ONLINE, ids=case_ids(ONLINE))
@torch.no_grad()
def test_online_training_forward(case, which):
    case = require(case)
    model = _load(case, which)
    _check_heads(model(*_inputs(case), softmax=True, run_score_head=True), case.prefixed("train."), "train")
    _check_logits(model(*_inputs(case), softmax=False, run_score_head=True), case.prefixed("train_logits."), "train")


@pytest.mark.parametrize("case", ONLINE, ids=case_ids(ONLINE))
@torch.no_grad()
def test_online_test_path(case):
    """Official set_online + forward_test (qkv cache, per-search outputs) vs our encode_templates + step."""
    case = require(case)
    model = _load(case, "pth")
    cfg = model.config
    io = case.io
    t, ot = io["in.template"][0:1], io["in.online_template"][0:1]
    cache = model.encode_templates(t, ot)
    for i in range(cfg.depth):
        mem = io[f"test.qkv_mem.{i}"]  # (3, 1, heads, 2*Nt, head_dim): q, k, v
        assert_unbounded(cache.keys[i], mem[1], f"cached keys of block {i}")
        assert_unbounded(cache.values[i], mem[2], f"cached values of block {i}")
    searches = [io["in.search"][0:1]] + [io[k] for k in sorted(k for k in io if k.startswith("in.search_extra"))]
    for j, search in enumerate(searches):
        if f"test.{j}.pred_boxes" not in io:
            continue
        out = model.step(search, cache, softmax=True, return_search_features=True)
        ref = case.prefixed(f"test.{j}.")
        _check_heads(out, ref, f"test.{j}")
        assert_unbounded(out["search_features"], ref["search_feat_2d"], f"test.{j} search_feat_2d")
        _check_logits(model.step(search, cache, softmax=False), case.prefixed(f"test_logits.{j}."), f"test.{j}")
        same = case.prefixed(f"trainpath_same_inputs.{j}.")
        if same:
            _check_heads(model(t, ot, search), same, f"trainpath_same_inputs.{j}")
    if "test.template_feat_2d" in io:
        last = model(t, ot, io["in.search"][0:1])["distill_feat_list"][-1]
        got = _tokens_2d(last[:, : cfg.num_template_tokens], cfg.feat_sz_t)
        assert_unbounded(got, io["test.template_feat_2d"], "template_feat_2d")


@pytest.mark.parametrize("case", PRUNING, ids=case_ids(PRUNING))
@torch.no_grad()
def test_pruning_gamma_forward(case):
    """Residual-branch gates of the layers being removed (official _stu model)."""
    case = require(case)
    model = _load(case, "pth")
    removed = case.config["remove_layers"]
    for g, gamma in enumerate(case.config["gammas"]):
        gammas = [gamma if i in removed else 1.0 for i in range(model.config.depth)]
        ref = case.prefixed(f"g{g}.")
        _check_heads(model(*_inputs(case), softmax=True, layer_gammas=gammas), ref, f"g{g}")
        student = model(*_inputs(case), softmax=False, layer_gammas=gammas)
        _check_logits(student, case.prefixed(f"g{g}.logits."), f"g{g}")
        # official stage-2 losses against the same weights without gates (the stage-2 teacher)
        teacher = model(*_inputs(case), softmax=True)
        s_layers = case.config["cfg"]["TRAIN"]["DISTILL_LAYERS_STUDENT"]
        t_layers = case.config["cfg"]["TRAIN"]["DISTILL_LAYERS_TEACHER"]
        kl = distribution_kl({e: student[f"prob_{e}"] for e in EDGE_NAMES}, {e: teacher[f"prob_{e}"] for e in EDGE_NAMES})
        assert_loss(kl, ref["stage2_kl_loss"], f"g{g} stage-2 KL")
        mse = feature_mimic_loss(student["distill_feat_list"], teacher["distill_feat_list"], s_layers, t_layers)
        assert_loss(mse, ref["stage2_feat_mse_loss"], f"g{g} feature MSE")


def test_key_manifest_matches_presets():
    """mixformerv2-b / -s have exactly the official key names, shapes, dtypes and trainability."""
    from mixformerv2.config import get_preset
    from mixformerv2.models.mixformerv2 import MixFormerV2

    manifest = json.loads((fixtures_dir() / "F_key_manifest.json").read_text())["models"]
    for preset, official in (("mixformerv2-b", "MixFormerV2-B"), ("mixformerv2-s", "MixFormerV2-S")):
        with torch.device("meta"):
            model = MixFormerV2(get_preset(preset).model)
        params = dict(model.named_parameters())
        ours = [
            [k, list(v.shape), str(v.dtype).replace("torch.", ""), "parameter" if k in params else "buffer",
             bool(params[k].requires_grad) if k in params else False]
            for k, v in model.state_dict().items()
        ]
        assert ours == manifest[official]["state_dict"], preset
        assert sum(np.prod(s) for _, s, *_ in ours) == manifest[official]["total_elements"]
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert trainable == manifest[official]["trainable_parameters"]


TEACHERS = cases_of("teacher")


def _teacher_config(case):
    from mixformerv2.models.mixvit import MixViTConfig

    d = case.config["dims"]
    return MixViTConfig(
        embed_dim=d["embed_dim"], depth=d["depth"], num_heads=d["num_heads"], mlp_ratio=float(d["mlp_ratio"]),
        patch_size=d["patch_size"], template_size=d["template_size"], search_size=d["search_size"],
        head_type=d.get("head_type", "CORNER_UP").lower(), head_channel=d["head_channel"],
    )


@pytest.mark.parametrize("which", ["pth", "safetensors"])
@pytest.mark.parametrize("case", TEACHERS, ids=case_ids(TEACHERS))
@torch.no_grad()
def test_mixvit_teacher_forward_marginals_and_stage1_kl(case, which):
    from mixformerv2.models.mixvit import corner_marginals, load_teacher
    case = require(case)
    path = case.path / ("checkpoint.pth" if which == "pth" else "weights.safetensors")
    teacher = load_teacher(path, _teacher_config(case))
    io = case.io
    out = teacher(*_inputs(case), softmax=True)
    assert_bounded(out["pred_boxes"], io["out.pred_boxes"], "teacher pred_boxes")
    for corner in ("tl", "br"):
        assert_bounded(out[f"prob_{corner}"], io[f"out.prob_{corner}"], f"prob_{corner}")
        assert_unbounded(out[f"score_map_{corner}"], io[f"out.score_map_{corner}"], f"score_map_{corner}")
    raw = teacher(*_inputs(case), softmax=False)
    for corner in ("tl", "br"):
        assert_unbounded(raw[f"prob_{corner}"], io[f"logits.{corner}"], f"logits.{corner}")
    head = teacher.box_head
    assert_bounded(head.coord_x, io["aux.coord_x"], "coord_x")
    assert_bounded(head.coord_y, io["aux.coord_y"], "coord_y")
    nt = (teacher.config.template_size // teacher.config.patch_size) ** 2
    side_t = teacher.config.template_size // teacher.config.patch_size
    last = out["distill_feat_list"][-1]
    assert_unbounded(_tokens_2d(last[:, :nt], side_t), io["aux.backbone_template_2d"], "teacher template_2d")
    marg = corner_marginals(out["prob_tl"], out["prob_br"], head.map_size)
    for e in EDGE_NAMES:
        assert_bounded(marg[e], io[f"marginal.prob_{e}"], f"marginal {e}")
    # stage-1 loss: the student fixture's logits against these marginals
    student = require(STUDENTS[0])  # the README's stage-1 loss uses the student case's logits
    logits = {e: student.io[f"logits.{e}"] for e in EDGE_NAMES}
    assert_loss(distribution_kl(logits, marg), io["distill.stage1_kl_loss"], "stage-1 KL")


def test_teacher_refuses_student_checkpoint():
    from mixformerv2 import CheckpointError
    from mixformerv2.models.mixvit import load_teacher

    case = require(STUDENTS[0])
    with pytest.raises(CheckpointError, match="does not fit the teacher"):
        load_teacher(case.path / "checkpoint.pth", _teacher_config(require(TEACHERS[0])))
