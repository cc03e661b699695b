"""Depth pruning and MLP reduction: official schedule, layer removal, slicing."""

from __future__ import annotations

import pytest
import torch

from fixtures_official import assert_bounded, assert_unbounded, case_ids, cases_of, require
from mixformerv2 import ConfigError, ModelConfig, build_model
from mixformerv2.models import load_checkpoint
from mixformerv2.training.pruning import gamma_schedule, layer_gammas, pruned_config_state, remove_layers, slice_mlp

PRUNING = cases_of("pruning")


@pytest.mark.conformance
@pytest.mark.parametrize("case", PRUNING, ids=case_ids(PRUNING))
def test_gamma_schedule_equals_official_table(case):
    table = require(case).config["gamma_schedule"]["table_epochs_counted_from_1"]
    for epoch, gamma in table.items():
        assert gamma_schedule(int(epoch)) == pytest.approx(gamma, abs=1e-12)
    assert gamma_schedule(1, official_offset=False) == pytest.approx(0.5 * (1 + torch.cos(torch.tensor(torch.pi / 40)).item()))
    assert gamma_schedule(40, official_offset=False) == 0.0 and gamma_schedule(39) == 0.0


@pytest.mark.conformance
@pytest.mark.parametrize("case", PRUNING, ids=case_ids(PRUNING))
@torch.no_grad()
def test_official_pruned_checkpoint_and_gamma_zero_equivalence(case):
    case = require(case)
    model = load_checkpoint(case.path / "checkpoint.pth", config=case.model_config)
    removed = case.config["remove_layers"]
    inputs = (case.io["in.template"], case.io["in.online_template"], case.io["in.search"])
    # official conversion: position embeddings dropped -> fresh sin-cos tables
    cfg = model.config.replace(depth=model.config.depth - len(removed))
    official = build_model(cfg).eval()
    missing, unexpected = official.load_state_dict(remove_layers(model.state_dict(), removed, keep_pos_embed=False), strict=False)
    assert sorted(missing) == ["backbone.pos_embed_s", "backbone.pos_embed_t"] and not unexpected
    out = official(*inputs)
    ref = case.prefixed("pruned_official_load.")
    assert_bounded(out["pred_boxes"], ref["pred_boxes"], "pruned pred_boxes")
    for e in "ltrb":
        assert_bounded(out[f"prob_{e}"], ref[f"prob_{e}"], f"pruned prob_{e}")
    assert_unbounded(out["reg_tokens"], ref["reg_tokens"], "pruned reg_tokens")
    # ours keeps the embeddings: the pruned model IS the gamma = 0 model
    cfg, state = pruned_config_state(model, removed)
    pruned = build_model(cfg).eval()
    pruned.load_state_dict(state, strict=True)
    gated = model(*inputs, layer_gammas=layer_gammas(model.config.depth, removed, 0.0))
    assert torch.equal(pruned(*inputs)["pred_boxes"], gated["pred_boxes"])


def test_remove_layers_renumbers_and_validates():
    state = {f"backbone.blocks.{i}.norm1.weight": torch.full((1,), float(i)) for i in range(12)}
    state["box_head.x"] = torch.zeros(1)
    out = remove_layers(state, [0, 3, 6, 9])
    assert [out[f"backbone.blocks.{j}.norm1.weight"].item() for j in range(8)] == [1, 2, 4, 5, 7, 8, 10, 11]
    assert "box_head.x" in out and len(out) == 9
    assert remove_layers(state, []) == state
    with pytest.raises(ConfigError):
        remove_layers(state, [12])
    with pytest.raises(ConfigError):
        remove_layers(state, [1, 1])


@torch.no_grad()
def test_mlp_slicing_without_cutting_is_identity_and_cuts_shapes():
    cfg = ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=4, template_size=32, search_size=64, feat_sz=16)
    model = build_model(cfg).eval()
    t, s = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 64, 64)
    same = build_model(cfg).eval()
    same.load_state_dict(slice_mlp(model.state_dict(), cfg.mlp_hidden))
    assert torch.equal(same(t, t, s)["pred_boxes"], model(t, t, s)["pred_boxes"])
    narrow_cfg = cfg.replace(mlp_ratio=1.0)
    narrow = build_model(narrow_cfg).eval()
    narrow.load_state_dict(slice_mlp(model.state_dict(), narrow_cfg.mlp_hidden), strict=True)
    assert narrow.backbone.blocks[0].mlp.fc1.weight.shape == (32, 32)
    torch.testing.assert_close(narrow.backbone.blocks[1].mlp.fc2.weight, model.backbone.blocks[1].mlp.fc2.weight[:, :32])
    with pytest.raises(ConfigError):
        slice_mlp(narrow.state_dict(), 64)
