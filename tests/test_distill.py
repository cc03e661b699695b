"""Distillation stages and chains: resampled teacher bins, each stage's loss on a fixed batch,
frozen fading layers and gamma = 0 == physical removal, init transforms, configuration errors
before training, built-in chains, and a chain run / resume / refusal through the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

from mixformerv2 import ModelConfig, build_model, save_checkpoint
from mixformerv2.errors import CheckpointError, ConfigError
from mixformerv2.models.mixvit import MixViT, MixViTConfig
from mixformerv2.training.chain import available_chains, check_chain, load_chain, parse_chain
from mixformerv2.training.distill import check_distillation, fit_init_state, resample_bins
from mixformerv2.training.pruning import gamma_schedule
from mixformerv2.training.trainer import TrainConfig, Trainer, read_log
from test_trainer import FakeTrackingData, _got10k_folder, _one_thread  # noqa: F401  (autouse fixture)

STUDENT = ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16,
                      score_head=False)
TEACHER = MixViTConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, patch_size=16, template_size=32,
                       search_size=64, head_type="corner_up", head_channel=16)  # 16 x 16 corner maps


class FixedBatch(FakeTrackingData):
    """The same samples every epoch: losses on a fixed batch must go down."""

    def set_epoch(self, epoch):
        self.epoch = 0


def _trainer(out, model, **train):
    settings = dict(epochs=12, batch_size=4, lr=2e-3, backbone_lr_mult=1.0, workers=0, log_every=1, seed=3,
                    keep_checkpoints=1, grad_clip=1.0)
    settings.update(train)
    return Trainer(model, FixedBatch(n=4), TrainConfig(**settings), out, progress=False, device="cpu")


def _saved_teacher(path: Path) -> Path:
    torch.manual_seed(5)
    return save_checkpoint(MixViT(TEACHER), path)


def _first_last(rows, key):
    values = [float(r[key]) for r in rows]
    return values[0], values[-1]


# -- bins -------------------------------------------------------------------------------------------
def test_resample_bins_keeps_mass_and_mean_and_is_identity_on_equal_bins():
    probs = torch.rand(3, 24).softmax(-1)
    assert torch.equal(resample_bins(probs, 24), probs)
    for bins in (40, 96):
        out = resample_bins(probs, bins)
        assert out.shape == (3, bins) and (out >= 0).all()
        torch.testing.assert_close(out.sum(-1), torch.ones(3))
        mean_src = (probs * torch.arange(24) / 24).sum(-1)
        mean_dst = (out * torch.arange(bins) / bins).sum(-1)
        torch.testing.assert_close(mean_dst, mean_src)  # the box edge the distribution encodes is kept
    torch.testing.assert_close(resample_bins(probs, 12).sum(-1), torch.ones(3))  # coarser: mass kept


# -- stages on a fixed batch -----------------------------------------------------------------------
def test_kl_of_identical_distributions_is_zero_and_positive_otherwise():
    from mixformerv2.training.losses import distribution_kl

    logits = {e: torch.randn(3, 16) for e in "ltrb"}
    same = {e: v.softmax(-1) for e, v in logits.items()}
    assert distribution_kl(logits, same).abs() < 1e-6
    other = {e: v.roll(3, dims=-1) for e, v in same.items()}
    assert distribution_kl(logits, other) > 0.01


def test_teacher_gt_and_score_stages_loss_decreases_on_a_fixed_batch(tmp_path):
    torch.manual_seed(0)
    trainer = _trainer(tmp_path / "teacher", MixViT(TEACHER), iou_type="giou")
    trainer.fit()
    first, last = _first_last(read_log(tmp_path / "teacher" / "log.csv"), "loss")
    assert last < 0.8 * first
    for extra in ({"dfl_weight": 1.0}, {"center_weight": 1.0}):
        with pytest.raises(ConfigError, match="MixViT .* stage 'gt', dfl_weight 0 and center_weight 0 only"):
            _trainer(tmp_path / "never", MixViT(TEACHER), **extra).fit()

    class FixedWithNegatives(FixedBatch):
        def __getitem__(self, index):
            item = super().__getitem__(index)
            item["label"] = torch.tensor(float(index % 2))
            if index % 2 == 0:  # a negative: the search region shows no target
                item["search"] = torch.zeros_like(item["search"])
            return item

    torch.manual_seed(0)
    model = build_model(STUDENT.replace(score_head=True))
    trainer = Trainer(model, FixedWithNegatives(n=4), TrainConfig(stage="score", epochs=20, batch_size=4, lr=1e-2, grad_clip=1.0,
                                                                 workers=0, log_every=1, keep_checkpoints=1),
                      tmp_path / "score", progress=False, device="cpu")
    trainer.fit()
    first, last = _first_last(read_log(tmp_path / "score" / "log.csv"), "loss_score")
    assert last < first - 0.05  # BCE falls from ln 2 (the features of a random backbone differ little)
    items = [FixedWithNegatives(n=4)[i] for i in range(4)]
    with torch.no_grad():
        scores = trainer.model.eval()(*(torch.stack([x[k] for x in items])
                                        for k in ("template", "online_template", "search")))["pred_scores"]
    assert min(scores[1::2]) > max(scores[0::2])  # positives above negatives


def test_dense_to_sparse_loss_decreases_and_student_starts_from_teacher_backbone(tmp_path):
    teacher = _saved_teacher(tmp_path / "teacher.safetensors")
    torch.manual_seed(0)
    trainer = _trainer(tmp_path / "run", build_model(STUDENT), stage="dense_to_sparse", teacher=str(teacher),
                       init_weights=str(teacher), init_backbone_only=True, epochs=1, lr=1e-9)
    trainer.fit()
    from safetensors.torch import load_file

    t_state = load_file(str(teacher))
    s_state = trainer.model.state_dict()
    assert torch.allclose(s_state["backbone.blocks.1.mlp.fc2.weight"], t_state["backbone.blocks.1.mlp.fc2.weight"],
                          atol=1e-6)  # copied (lr ~ 0)

    torch.manual_seed(0)
    trainer = _trainer(tmp_path / "run2", build_model(STUDENT), stage="dense_to_sparse", teacher=str(teacher))
    trainer.fit()
    rows = read_log(tmp_path / "run2" / "log.csv")
    first, last = _first_last(rows, "loss_distill")
    assert last < 0.8 * first
    first, last = _first_last(rows, "loss")
    assert last < first and rows[0]["loss_feat"] == ""


def test_deep_to_shallow_fades_freezes_and_equals_the_pruned_model(tmp_path):
    torch.manual_seed(1)
    deep = build_model(STUDENT.replace(depth=3))
    teacher = save_checkpoint(deep, tmp_path / "t.safetensors")
    student = build_model(STUDENT.replace(depth=3))
    # distillation terms only (no ground truth), so both must fall; gamma over 3 epochs with the
    # official offset: epoch 1 -> 0.25, from epoch 2 on -> 0
    trainer = _trainer(tmp_path / "run", student, stage="deep_to_shallow", teacher=str(teacher),
                       init_weights=str(teacher), remove_layers=[0], gamma_epochs=3, feat_weight=1.0,
                       iou_weight=0.0, l1_weight=0.0, distill_layers_student=[1, 2], distill_layers_teacher=[1, 2])
    trainer.fit()
    rows = read_log(tmp_path / "run" / "log.csv")
    assert [float(r["gamma"]) for r in rows] == [gamma_schedule(int(r["epoch"]), 3) for r in rows]
    assert float(rows[0]["gamma"]) == pytest.approx(0.25) and float(rows[-1]["gamma"]) == 0.0
    gated = [r for r in rows if float(r["gamma"]) == 0.0]
    for key in ("loss", "loss_feat", "loss_distill"):
        first, last = _first_last(gated, key)
        assert last < 0.8 * first, key
    trained = trainer.model.eval()
    # the fading layer was initialised from the teacher and frozen; the others trained
    assert torch.equal(trained.backbone.blocks[0].mlp.fc1.weight, deep.backbone.blocks[0].mlp.fc1.weight)
    assert not torch.equal(trained.backbone.blocks[1].mlp.fc1.weight, deep.backbone.blocks[1].mlp.fc1.weight)
    assert not any(p.requires_grad for p in trained.backbone.blocks[0].parameters())

    # physically removing the faded layer gives the same network as gamma = 0
    pruned = build_model(STUDENT.replace(depth=2)).eval()
    state = fit_init_state(trained.state_dict(), pruned.state_dict(), remove=[0])
    pruned.load_state_dict(state)
    g = torch.Generator().manual_seed(0)
    t, o, s = torch.randn(2, 3, 32, 32, generator=g), torch.randn(2, 3, 32, 32, generator=g), torch.randn(2, 3, 64, 64,
                                                                                                       generator=g)
    with torch.no_grad():
        a = trained(t, o, s, layer_gammas=[0.0, 1.0, 1.0])
        b = pruned(t, o, s)
    torch.testing.assert_close(a["pred_boxes"], b["pred_boxes"], rtol=0, atol=1e-6)


def test_mlp_reduction_init_slices_then_distils(tmp_path):
    torch.manual_seed(2)
    wide = build_model(STUDENT)
    path = save_checkpoint(wide, tmp_path / "wide.safetensors")
    narrow = build_model(STUDENT.replace(mlp_ratio=1.0))
    trainer = _trainer(tmp_path / "run", narrow, stage="deep_to_shallow", teacher=str(path), init_weights=str(path),
                       init_slice_mlp=True, distill_layers_student=[0, 1], distill_layers_teacher=[0, 1], epochs=1,
                       lr=1e-9)
    trainer.fit()
    got = trainer.model.backbone.blocks[1].mlp
    ref = wide.backbone.blocks[1].mlp
    torch.testing.assert_close(got.fc1.weight, ref.fc1.weight[:32], atol=1e-6, rtol=0)
    torch.testing.assert_close(got.fc2.weight, ref.fc2.weight[:, :32], atol=1e-6, rtol=0)
    with pytest.raises(CheckpointError, match=r"do not fit the model.*shape mismatch"):
        fit_init_state(wide.state_dict(), narrow.state_dict())  # without slicing
    with pytest.raises(CheckpointError, match="cannot slice"):
        fit_init_state(narrow.state_dict(), wide.state_dict(), slice_mlp_hidden=True)  # widening is not slicing


# -- errors before training ---------------------------------------------------------------------------
def test_configuration_errors_are_raised_before_anything_is_written(tmp_path):
    teacher = _saved_teacher(tmp_path / "teacher.safetensors")
    v2_teacher = save_checkpoint(build_model(STUDENT.replace(depth=4)), tmp_path / "v2.safetensors")
    cases = [
        (dict(stage="dense_to_sparse"), "needs a teacher"),
        (dict(stage="deep_to_shallow", teacher=str(teacher)), "needs a mixformerv2 teacher"),
        (dict(stage="dense_to_sparse", teacher=str(v2_teacher)), "needs a mixvit teacher"),
        (dict(stage="deep_to_shallow", teacher=str(v2_teacher), distill_layers_student=[0, 1],
              distill_layers_teacher=[3]), "must pair up"),
        (dict(stage="deep_to_shallow", teacher=str(v2_teacher), distill_layers_student=[0, 5],
              distill_layers_teacher=[1, 3]), "not distinct layers of the 2-layer student"),
        (dict(stage="deep_to_shallow", teacher=str(v2_teacher), distill_layers_student=[0, 1],
              distill_layers_teacher=[1, 9]), "not distinct layers of the 4-layer teacher"),
        (dict(stage="deep_to_shallow", teacher=str(v2_teacher), remove_layers=[1], distill_layers_student=[0, 1],
              distill_layers_teacher=[1, 3]), r"\[1\] are both removed and feature-mimicked"),
        (dict(stage="deep_to_shallow", teacher=str(v2_teacher), remove_layers=[0, 1], feat_weight=0.0),
         "would remove all 2 layers"),
        (dict(stage="gt", remove_layers=[0]), "only used by stage deep_to_shallow"),
        (dict(stage="deep_to_shallow", teacher=str(tmp_path / "nope.pth")), "teacher checkpoint not found"),
    ]
    for settings, message in cases:
        out = tmp_path / "never"
        with pytest.raises(ConfigError, match=message):
            _trainer(out, build_model(STUDENT), **settings).fit()
        assert not out.exists(), settings
    wide_teacher = save_checkpoint(build_model(STUDENT.replace(embed_dim=64, num_heads=4)), tmp_path / "w.safetensors")
    with pytest.raises(ConfigError, match="teacher/student size mismatch: feature mimicking needs equal widths"):
        _trainer(tmp_path / "never", build_model(STUDENT), stage="deep_to_shallow", teacher=str(wide_teacher),
                 distill_layers_student=[0, 1], distill_layers_teacher=[0, 1]).fit()
    with pytest.raises(ConfigError, match="teacher/student size mismatch: teacher search_size 96"):
        check_distillation(STUDENT, TEACHER.replace(search_size=96),
                           TrainConfig(stage="dense_to_sparse", teacher="t"))
    with pytest.raises(ConfigError, match="remove_layers must be a list of layer indices"):
        TrainConfig(remove_layers=[-1])


# -- chains -----------------------------------------------------------------------------------------
def test_builtin_chains_are_consistent(tmp_path):
    assert {"mixformerv2-b", "mixformerv2-s", "tiny-chain"} <= set(available_chains())
    dummy = tmp_path / "input.pth"
    dummy.write_bytes(b"x")  # official teacher / MAE files: the chain check reads only their names here
    b = load_chain("mixformerv2-b")
    assert [n for n, _ in b.stages] == ["d12", "d12to8", "d8", "score"]
    recipes = check_chain(b, tmp_path / "b", {"teacher": str(dummy), "mae": str(dummy)})
    assert recipes[1].train.remove_layers == (0, 3, 6, 9) and recipes[2].train.init_remove_layers == (0, 3, 6, 9)
    assert recipes[2].train.teacher == str(tmp_path / "b" / "1-d12" / "model.safetensors")
    assert recipes[3].train.stage == "score" and recipes[3].model.depth == 8
    s = load_chain("mixformerv2-s")
    recipes = check_chain(s, tmp_path / "s", {"teacher": str(dummy), "mae": str(dummy)})
    assert recipes[-1].model == ModelConfig(768, 4, 12, 1.0, 16, 112, 224, 96, True)  # the released S network
    assert recipes[-2].train.init_slice_mlp
    from mixformerv2.demo import default_weights

    tiny = check_chain(load_chain("tiny-chain"), tmp_path / "t", {"backbone": str(default_weights())})
    assert tiny[0].model.map_size == 56 and tiny[1].model.feat_sz == 28  # resampled teacher marginals
    with pytest.raises(ConfigError, match="needs the input 'teacher'; give it with --input teacher=PATH"):
        check_chain(b, tmp_path / "b", {"mae": str(dummy)})


def _chain_file(path: Path, lr: float = 1e-3, second_stage: dict | None = None) -> Path:
    stage = {"embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0, "patch_size": 16, "template_size": 32,
             "search_size": 64, "feat_sz": 16, "score_head": False}
    teacher = {"architecture": "mixvit", **TEACHER.to_dict()}
    common = {"epochs": 1, "batch_size": 4, "workers": 0, "log_every": 1, "lr": lr, "grad_clip": 1.0}
    tree = {
        "data": {"datasets": [{"name": "got10k", "root": None}], "sampler": {"samples_per_epoch": 8, "max_gap": 10}},
        "stages": [
            {"name": "teacher", "model": teacher, "train": {**common, "iou_type": "giou"}},
            {"name": "d2", "model": stage, "train": {**common, "stage": "dense_to_sparse", "teacher": "@teacher",
                                                    "init_weights": "@teacher", "init_backbone_only": True,
                                                    **(second_stage or {})}},
            {"name": "d1", "model": {**stage, "depth": 1},
             "train": {**common, "stage": "deep_to_shallow", "teacher": "@d2", "init_weights": "@d2",
                       "init_remove_layers": [0], "distill_layers_student": [0], "distill_layers_teacher": [1]}},
        ],
    }
    path.write_text(yaml.safe_dump(tree))
    return path


def test_chain_runs_skips_finished_stages_and_refuses_changed_settings(capsys, tmp_path):
    from mixformerv2.cli import main

    data = _got10k_folder(tmp_path / "got10k")
    chain = _chain_file(tmp_path / "chain.yaml")
    out = tmp_path / "run"
    argv = ["train", "--chain", str(chain), "--data", f"got10k={data}", "--out", str(out), "--quiet", "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "stage 3/3 d1" in text and "chain done: 3 stages" in text
    final = out / "3-d1" / "model.safetensors"
    from mixformerv2 import load_checkpoint

    assert load_checkpoint(final).config.depth == 1
    assert len(read_log(out / "2-d2" / "log.csv")) == 2 and read_log(out / "2-d2" / "log.csv")[0]["loss_distill"]
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    assert main(argv) == 2 and "--resume" in capsys.readouterr().err  # the folder holds the chain
    assert main(argv + ["--resume"]) == 0
    assert capsys.readouterr().out.count(": done (") == 3  # nothing retrained
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps

    # a changed setting in any stage is refused before anything trains, naming stage and setting
    _chain_file(chain, second_stage={"distill_weight": 1.0})
    assert main(argv + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "stage d2" in err and "train.distill_weight: 5.0 -> 1.0" in err and "Traceback" not in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps


def test_chain_file_errors(tmp_path):
    good = yaml.safe_load(_chain_file(tmp_path / "c.yaml").read_text())
    bad = {**good, "stages": [good["stages"][1]]}  # d2 refers to @teacher, which is gone
    with pytest.raises(ConfigError, match=r"unknown reference @teacher"):
        check_chain(parse_chain(bad), tmp_path / "o")
    later = {**good, "stages": [good["stages"][1], good["stages"][0]]}
    with pytest.raises(ConfigError, match="not an earlier stage"):
        check_chain(parse_chain(later), tmp_path / "o")
    twice = {**good, "stages": [good["stages"][0], good["stages"][0]]}
    with pytest.raises(ConfigError, match="used twice"):
        parse_chain(twice)
    wrong_init = yaml.safe_load(yaml.safe_dump(good))
    wrong_init["stages"][2]["train"]["init_remove_layers"] = []
    with pytest.raises(ConfigError, match=r"stage d1: init_weights do not fit the model.*unexpected"):
        check_chain(parse_chain(wrong_init), tmp_path / "o")
    with pytest.raises(ConfigError, match="has no input"):
        check_chain(parse_chain(good), tmp_path / "o", {"mae": "x"})
    with pytest.raises(ConfigError, match="unknown chain 'nope'"):
        load_chain("nope")
    assert os.listdir(tmp_path) == ["c.yaml"]


def test_runs_made_before_the_distillation_settings_existed_still_resume():
    from mixformerv2.training.trainer import config_changes

    now = {"train": TrainConfig().to_dict(), "model": {"depth": 2}}
    before = {"train": {k: v for k, v in TrainConfig().to_dict().items()
                        if k not in ("teacher", "remove_layers", "distill_weight", "gamma_official")}, "model": {"depth": 2}}
    assert config_changes(before, now) == []
    changed = {**now, "train": {**now["train"], "distill_weight": 1.0}}
    assert config_changes(before, changed) == ["train.distill_weight"]


def test_samples_without_online_template_feed_teachers_and_mixvit_the_template_twice(tmp_path):
    """A MixViT (student or teacher) has no one-template path: it is given the template twice, so
    its losses equal those on data that holds the template as online template."""
    teacher = _saved_teacher(tmp_path / "teacher.safetensors")
    runs = {}
    for online in ("same", "none"):
        data = FixedBatch(n=4, online=online)
        torch.manual_seed(0)
        Trainer(MixViT(TEACHER), data, TrainConfig(epochs=2, batch_size=4, workers=0, log_every=1, keep_checkpoints=1),
                tmp_path / f"mixvit-{online}", progress=False, device="cpu").fit()
        torch.manual_seed(0)
        Trainer(build_model(STUDENT), data, TrainConfig(stage="dense_to_sparse", teacher=str(teacher), epochs=2,
                                                        batch_size=4, workers=0, log_every=1, keep_checkpoints=1),
                tmp_path / f"d2s-{online}", progress=False, device="cpu").fit()
        runs[online] = [read_log(tmp_path / f"{run}-{online}" / "log.csv") for run in ("mixvit", "d2s")]
    for same, none in zip(runs["same"], runs["none"]):
        assert len(same) == len(none) == 2
        for a, b in zip(same, none):
            for k in ("loss", "iou"):
                assert float(b[k]) == pytest.approx(float(a[k]), rel=1e-4, abs=1e-6), k
    assert float(runs["none"][1][0]["loss_distill"]) > 0
