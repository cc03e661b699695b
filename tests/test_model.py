"""Network properties that hold for any configuration (no fixtures needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mixformerv2 import ModelConfig, TemplateCache, build_model

SRC = Path(__file__).resolve().parents[1] / "src" / "mixformerv2"


def _inputs(cfg: ModelConfig, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(batch, 3, cfg.template_size, cfg.template_size, generator=g)
    ot = torch.randn(batch, 3, cfg.template_size, cfg.template_size, generator=g)
    s = torch.randn(batch, cfg.search_channels, cfg.search_size, cfg.search_size, generator=g)
    return t, ot, s


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(embed_dim=48, depth=3, num_heads=3, mlp_ratio=1.5, template_size=48, search_size=80, feat_sz=20),
        ModelConfig(embed_dim=32, depth=1, num_heads=1, mlp_ratio=4, patch_size=8, template_size=16, search_size=40,
                    feat_sz=7, score_head=False),
        ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, patch_size=8, template_size=16, search_size=40,
                    feat_sz=10, motion_input=True),
    ],
    ids=["odd-sizes", "patch8-no-score", "motion-input"],
)
@torch.no_grad()
def test_step_equals_forward_for_any_config(cfg):
    torch.manual_seed(1)
    model = build_model(cfg).eval()
    t, ot, s = _inputs(cfg, 3)
    full = model(t, ot, s)
    fast = model.step(s, model.encode_templates(t, ot), return_search_features=True)
    for key in ("pred_boxes", "prob_l", "prob_r", "prob_t", "prob_b", "reg_tokens"):
        torch.testing.assert_close(fast[key], full[key], atol=1e-5, rtol=0)
    assert ("pred_scores" in full) == cfg.score_head
    n_t = cfg.num_template_tokens
    search_tokens = full["distill_feat_list"][-1][:, 2 * n_t : 2 * n_t + cfg.num_search_tokens]
    got = fast["search_features"].flatten(2).transpose(1, 2)
    torch.testing.assert_close(got, search_tokens, atol=1e-5, rtol=1e-5)
    assert len(full["distill_feat_list"]) == cfg.depth
    assert full["distill_feat_list"][0].shape == (3, 2 * n_t + cfg.num_search_tokens + 4, cfg.embed_dim)


@torch.no_grad()
def test_model_holds_no_template_state():
    """Interleaving two caches gives the same results as using each alone."""
    cfg = ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
    model = build_model(cfg).eval()
    (t1, o1, s1), (t2, o2, s2) = _inputs(cfg, 1, 1), _inputs(cfg, 1, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attrs = set(vars(model)) | {k for m in model.modules() for k in vars(m)}
    c1, c2 = model.encode_templates(t1, o1), model.encode_templates(t2, o2)
    a = model.step(s1, c1)["pred_boxes"]
    model.step(s2, c2)
    assert torch.equal(model.step(s1, c1)["pred_boxes"], a)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert attrs == set(vars(model)) | {k for m in model.modules() for k in vars(m)}
    both = TemplateCache.cat([c1, c2])
    out = model.step(torch.cat([s1, s2]), both)["pred_boxes"]
    torch.testing.assert_close(out[0], a[0], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="2 targets"):
        model.step(s1, both)


def test_no_device_calls_in_model_code():
    offenders = [str(p) for p in SRC.rglob("*.py") if ".cuda(" in p.read_text()]
    assert offenders == []


@torch.no_grad()
def test_zero_gamma_makes_a_block_the_identity():
    cfg = ModelConfig(embed_dim=32, depth=3, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
    model = build_model(cfg).eval()
    t, ot, s = _inputs(cfg, 2)
    feats = model(t, ot, s, layer_gammas=[1.0, 0.0, 1.0])["distill_feat_list"]
    assert torch.equal(feats[1], feats[0])
    assert not torch.equal(feats[2], feats[1])


@torch.no_grad()
def test_official_5d_inputs_and_box_conventions():
    cfg = ModelConfig(embed_dim=32, depth=1, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
    model = build_model(cfg).eval()
    t, ot, s = _inputs(cfg, 2)
    out = model(t[None], ot[None], s[None])
    torch.testing.assert_close(out["pred_boxes"], model(t, ot, s)["pred_boxes"])
    # right/bottom edges can never exceed (bins-1)/bins of the crop: bins sit at k*stride
    cx, cy, w, h = out["pred_boxes"][:, 0].unbind(-1)
    assert torch.all(cx + w / 2 <= (cfg.feat_sz - 1) / cfg.feat_sz + 1e-6)
    probs = out["prob_l"]
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    logits = model(t, ot, s, softmax=False)["prob_l"]
    torch.testing.assert_close(logits.softmax(-1), probs)


@pytest.mark.parametrize("layer", [0, -2, -1])
def test_search_tokens_of_a_block_are_its_output_and_change_nothing_else(layer):
    cfg = ModelConfig(embed_dim=32, depth=3, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    t, ot, s = _inputs(cfg, 2)
    with torch.no_grad():
        full = model(t, ot, s)
        out = model(t, ot, s, features=False, search_tokens_of=layer)
    nt = 2 * cfg.num_template_tokens
    want = full["distill_feat_list"][layer][:, nt : nt + cfg.num_search_tokens]
    torch.testing.assert_close(out["search_tokens"], want, rtol=0, atol=1e-6)
    torch.testing.assert_close(out["pred_boxes"], full["pred_boxes"], rtol=0, atol=1e-6)
    assert "search_tokens" not in full and "distill_feat_list" not in out


def test_forward_without_features_gives_the_same_heads_and_gradients():
    """features=False computes only the prediction tokens in the last block (training speed)."""
    from mixformerv2 import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(embed_dim=32, depth=3, num_heads=2, mlp_ratio=2, template_size=32,
                                    search_size=64, feat_sz=16))
    g = torch.Generator().manual_seed(1)
    t, o, s = torch.randn(2, 3, 32, 32, generator=g), torch.randn(2, 3, 32, 32, generator=g), torch.randn(2, 3, 64, 64,
                                                                                                       generator=g)
    grads = []
    for features in (True, False):
        model.zero_grad()
        out = model(t, o, s, softmax=False, layer_gammas=[1.0, 0.5, 1.0], features=features)
        assert ("distill_feat_list" in out) == features
        (out["pred_boxes"].sum() + out["prob_l"].logsumexp(-1).sum() + out["pred_scores"].sum()).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        if features:
            ref = {k: out[k].detach() for k in ("pred_boxes", "prob_l", "prob_b", "pred_scores")}
        else:
            for k, v in ref.items():
                torch.testing.assert_close(out[k], v, rtol=0, atol=1e-6)
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-5, atol=1e-6, msg=name)


def test_bf16_autocast_training_attention_is_explicit_bf16_and_close_to_the_fused_kernel():
    """Under CPU bf16 autocast, attention runs as bfloat16 matmuls (the fused CPU kernel is slower
    there); outside autocast it is the fused kernel itself."""
    import torch.nn.functional as F

    from mixformerv2.models.vit import attend

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, n, 32, generator=g) for n in (50, 80, 80))
    assert torch.equal(attend(q, k, v), F.scaled_dot_product_attention(q, k, v))
    with torch.autocast("cpu", torch.bfloat16):
        fast = attend(q, k, v)
    assert fast.dtype == torch.bfloat16
    torch.testing.assert_close(fast.float(), F.scaled_dot_product_attention(q, k, v), rtol=0, atol=0.03)

    torch.manual_seed(0)
    model = build_model(ModelConfig(embed_dim=64, depth=2, num_heads=2, mlp_ratio=2, patch_size=8, template_size=32,
                                    search_size=64, feat_sz=16)).train()
    t, o, s = _inputs(model.config, 2)
    ref = model(t, o, s, features=False)["pred_boxes"]
    with torch.autocast("cpu", torch.bfloat16):
        out = model(t, o, s, features=False)["pred_boxes"]
    out.float().sum().backward()  # gradients flow through the bf16 path
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    torch.testing.assert_close(out.float(), ref.detach(), rtol=0, atol=0.02)


def test_one_template_as_online_template_equals_the_duplicated_pair_and_its_gradients():
    """online_template=None computes the template tokens once; outputs, features and gradients are
    those of forward(template, template, ...)."""
    cfg = ModelConfig(embed_dim=32, depth=3, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
    torch.manual_seed(0)
    model = build_model(cfg)
    t, _, s = _inputs(cfg, 2)
    results = []
    for online in (t, None):
        model.zero_grad()
        out = model(t, online, s, softmax=False, layer_gammas=[1.0, 0.5, 1.0], search_tokens_of=1)
        (out["pred_boxes"].sum() + out["prob_l"].logsumexp(-1).sum() + out["pred_scores"].sum()
         + out["search_tokens"].square().mean()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append(({k: v.detach() for k, v in out.items() if k != "distill_feat_list"},
                        [f.detach() for f in out["distill_feat_list"]], grads))
    (ref, ref_feats, ref_grads), (out, feats, grads) = results
    assert ref.keys() == out.keys()
    for k in ref:
        torch.testing.assert_close(out[k], ref[k], rtol=0, atol=2e-6, msg=k)
    assert [f.shape for f in feats] == [f.shape for f in ref_feats]
    for a, b in zip(feats, ref_feats):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-6)
    assert grads.keys() == ref_grads.keys()
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    # a different online template does change the outputs (the test can fail)
    other = model(t, t.flip(-1), s)["pred_boxes"]
    assert (other - model(t, None, s)["pred_boxes"]).abs().max() > 1e-4


def test_key_bias_for_template_copies_equals_attention_over_duplicated_keys():
    from mixformerv2.models.vit import attend, template_copies_bias

    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 2, 30, 16, generator=g)
    kt, vt, ks, vs = (torch.randn(2, 2, n, 16, generator=g) for n in (10, 10, 20, 20))
    k, v = torch.cat([kt, ks], 2), torch.cat([vt, vs], 2)
    want = attend(q, torch.cat([kt, kt, ks], 2), torch.cat([vt, vt, vs], 2))
    assert template_copies_bias(10, 30, 1) is None
    bias = template_copies_bias(10, 30, 2)
    torch.testing.assert_close(attend(q, k, v, bias), want, rtol=0, atol=1e-5)
    assert (attend(q, k, v) - want).abs().max() > 1e-3  # without the bias it differs
    with torch.autocast("cpu", torch.bfloat16):  # the explicit bf16 training path
        fast = attend(q, k, v, bias)
    torch.testing.assert_close(fast.float(), want, rtol=0, atol=0.03)


@torch.no_grad()
def test_motion_input_starts_as_the_plain_model_and_then_reads_the_frame_difference():
    """The motion embedding starts at zero (training begins from the plain network); once trained,
    the difference channels change the output. Crops with the wrong number of channels are refused."""
    cfg = ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, patch_size=8, template_size=16,
                      search_size=40, feat_sz=10)
    torch.manual_seed(2)
    plain = build_model(cfg).eval()
    motion = build_model(cfg.replace(motion_input=True)).eval()
    missing, unexpected = motion.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["backbone.motion_embed.proj.bias", "backbone.motion_embed.proj.weight"] and not unexpected
    t, ot, s6 = _inputs(motion.config, 2)
    want = plain(t, ot, s6[:, :3])["pred_boxes"]
    torch.testing.assert_close(motion(t, ot, s6)["pred_boxes"], want, atol=0, rtol=0)
    torch.nn.init.normal_(motion.backbone.motion_embed.proj.weight, std=0.5)
    assert not torch.allclose(motion(t, ot, s6)["pred_boxes"], want, atol=1e-3)
    with pytest.raises(ValueError, match="3 channels; this model takes 6"):
        motion(t, ot, s6[:, :3])
    with pytest.raises(ValueError, match="6 channels; this model takes 3"):
        plain.step(s6, plain.encode_templates(t, ot))
