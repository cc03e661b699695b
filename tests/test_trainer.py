"""Trainer: official optimiser set-up, exact resume, atomic checkpoints, output-folder safety,
2-process torchrun (gloo), bf16, logs, recipes and the `train` command.

Everything runs a tiny network on a fake in-memory dataset with the TrackingSampler item
format, so these tests do not depend on the data layer (except the marked CLI integration test).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from mixformerv2 import ModelConfig, build_model, hardware, load_checkpoint
from mixformerv2.errors import ConfigError, MixFormerError
from mixformerv2.training import trainer as trainer_mod
from mixformerv2.training.recipes import available_recipes, load_recipe, parse_assignments, parse_data_overrides
from mixformerv2.training.trainer import (
    CSV_COLUMNS,
    ShardedEpochSampler,
    TrainConfig,
    Trainer,
    TrainingError,
    WeightAverage,
    atomic_torch_save,
    build_optimizer,
    configure_trainable,
    load_training_checkpoint,
    read_log,
)

TINY = ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny networks: one intra-op thread is faster and avoids oversubscription under pytest-xdist
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FakeTrackingData(torch.utils.data.Dataset):
    """TrackingSampler-like items; each a pure function of (seed, epoch, index)."""

    def __init__(self, n=24, template=32, search=64, seed=0, negatives=False, record=False, crash_at=None,
                 online="flipped"):
        self.n, self.t, self.s, self.seed, self.online = n, template, search, seed, online
        self.negatives, self.record, self.crash_at = negatives, record, crash_at
        self.epoch = 0
        self.seen: list[list[int]] = []

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if self.crash_at is not None and (self.epoch, index) == self.crash_at:
            raise RuntimeError("simulated crash")
        if self.record:
            self.seen.append([self.epoch, int(index)])
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 10_007 + int(index))
        xy = torch.rand(2, generator=g) * 0.4 + 0.1
        wh = torch.rand(2, generator=g) * 0.3 + 0.15
        search = torch.randn(3, self.s, self.s, generator=g) * 0.1
        x0, y0 = (xy * self.s).long().tolist()
        x1, y1 = ((xy + wh) * self.s).long().clamp(max=self.s).tolist()
        search[:, y0:y1, x0:x1] += 1.0
        template = torch.randn(3, self.t, self.t, generator=g) * 0.1
        q = self.t // 4
        template[:, q : 3 * q, q : 3 * q] += 1.0
        label = 0.0 if (self.negatives and index % 4 == 0) else 1.0
        item = {
            "template": template,
            "online_template": template.flip(-1),
            "search": search,
            "search_anno": torch.cat([xy, wh]).float(),
            "label": torch.tensor(label),
            "resampled": torch.tensor(int(index) % 3 == 0, dtype=torch.int64),
        }
        if self.online == "same":  # the template given twice
            item["online_template"] = template.clone()
        elif self.online == "none":  # as TrackingSampler with online_template='template'
            del item["online_template"]
        return item


def make_trainer(out, data=None, model_cfg=TINY, **overrides):
    opts = {k: overrides.pop(k) for k in ("resume", "overwrite", "device") if k in overrides}
    settings = dict(epochs=2, batch_size=4, lr=1e-3, workers=0, log_every=1, seed=7, keep_checkpoints=2)
    settings.update(overrides)
    torch.manual_seed(0)
    model = build_model(model_cfg)
    return Trainer(model, data if data is not None else FakeTrackingData(), TrainConfig(**settings), out,
                   progress=False, device=opts.get("device", "cpu"), resume=opts.get("resume", False),
                   overwrite=opts.get("overwrite", False), data_config={"fake": {"n": 24}})


def loss_rows(path):
    return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in read_log(path)]


# -- optimiser ------------------------------------------------------------------------------------
def test_optimizer_groups_and_learning_rates_gt_stage():
    model = build_model(TINY)
    configure_trainable(model, "gt")
    cfg = TrainConfig(lr=1e-3, lr_drop_epoch=2)
    opt, sched = build_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.AdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    g0 = [names[id(p)] for p in opt.param_groups[0]["params"]]
    g1 = [names[id(p)] for p in opt.param_groups[1]["params"]]
    assert len(opt.param_groups) == 2
    assert g0 and all("backbone" not in n for n in g0) and all(n.startswith("box_head.") for n in g0)
    assert g1 and all("backbone" in n for n in g1)
    assert "backbone.reg_tokens" in g1 and "backbone.pos_embed_reg" in g1
    grouped = set(g0) | set(g1)
    assert "backbone.pos_embed_s" not in grouped and "backbone.pos_embed_t" not in grouped  # fixed sin-cos
    assert not any("score" in n for n in grouped)  # no score head in box training
    assert grouped == {n for n, p in model.named_parameters() if p.requires_grad}
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3, 1e-4])
    assert all(g["weight_decay"] == 1e-4 for g in opt.param_groups)
    lrs = []
    for _ in range(4):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert lrs[1] == pytest.approx([1e-3, 1e-4]) and lrs[2] == pytest.approx([1e-4, 1e-5])  # x0.1 after 2 epochs


def test_score_stage_trains_only_the_score_head(tmp_path):
    model = build_model(TINY)
    configure_trainable(model, "score")
    opt, _ = build_optimizer(model, TrainConfig(stage="score", lr=1e-3))
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["lr"] == 1e-3
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].startswith("score_head.") for p in opt.param_groups[0]["params"])
    assert all(p.requires_grad == ("score" in n) for n, p in model.named_parameters())

    trainer = make_trainer(tmp_path / "run", FakeTrackingData(negatives=True), stage="score", epochs=1)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("score_head.") for k in changed)
    rows = read_log(tmp_path / "run" / "log.csv")
    assert all(r["loss_score"] and float(r["loss_score"]) > 0 for r in rows)
    assert all(r["lr_backbone"] == "" for r in rows)


def test_score_stage_needs_a_score_head(tmp_path):
    with pytest.raises(ConfigError, match="score head"):
        make_trainer(tmp_path / "r", model_cfg=TINY.replace(score_head=False), stage="score").fit()


def test_train_config_validation():
    with pytest.raises(ConfigError, match="stage"):
        TrainConfig(stage="distill")
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="unknown training keys"):
        TrainConfig.from_dict({"lr": 1, "learning_rate": 2})
    assert TrainConfig.from_dict({"lr": 1}).lr == 1.0


def test_sharded_sampler_is_deterministic_and_disjoint():
    a = [ShardedEpochSampler(10, seed=1, rank=r, world_size=3) for r in range(3)]
    for s in a:
        s.set_epoch(4)
    shards = [s.indices() for s in a]
    assert all(len(x) == 3 for x in shards)
    assert len(set().union(*map(set, shards))) == 9
    perm = a[0].permutation()
    assert shards[1] == perm[1:9:3]
    b = ShardedEpochSampler(10, seed=1, rank=1, world_size=3)
    b.set_epoch(4)
    assert b.indices() == shards[1]
    b.set_epoch(5)
    assert b.indices() != shards[1]


# -- exact resume -------------------------------------------------------------------------------------
def test_exact_resume_matches_uninterrupted_run(tmp_path):
    full = make_trainer(tmp_path / "full", epochs=3)
    full.fit()

    # 1 epoch, then resume for 2 more (with data-loading workers this time)
    make_trainer(tmp_path / "split", epochs=1).fit()
    result = make_trainer(tmp_path / "split", epochs=3, workers=2, resume=True).fit()
    assert result.resumed_from is not None and result.epochs_done == 3

    # killed in the middle of epoch 2, then resumed: the partial epoch's log rows are replaced
    with pytest.raises(RuntimeError, match="simulated crash"):
        make_trainer(tmp_path / "crash", FakeTrackingData(crash_at=(2, 5)), epochs=3).fit()
    assert {r["epoch"] for r in read_log(tmp_path / "crash" / "log.csv")} == {"1", "2"}
    make_trainer(tmp_path / "crash", epochs=3, resume=True).fit()

    want = loss_rows(tmp_path / "full" / "log.csv")
    assert len(want) == 3 * 6 and [r["step"] for r in want] == [str(i) for i in range(1, 19)]
    for run in ("split", "crash"):
        assert loss_rows(tmp_path / run / "log.csv") == want, run
        a = load_checkpoint(tmp_path / "full" / "model.safetensors").state_dict()
        b = load_checkpoint(tmp_path / run / "model.safetensors").state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    # the learning rate dropped after lr_drop_epoch (default 20 > 3 here: unchanged)
    assert {r["lr"] for r in want} == {"0.001"}


def test_samples_without_online_template_train_as_the_template_given_twice(tmp_path):
    """MixFormerV2 encodes the one template once; the losses are those of (template, template)."""
    runs = {online: loss_rows(make_trainer(tmp_path / online, data=FakeTrackingData(online=online),
                                           center_weight=1.0).fit().out_dir / "log.csv")
            for online in ("same", "none", "flipped")}
    assert len(runs["none"]) == len(runs["same"]) > 0
    for a, b in zip(runs["none"], runs["same"]):
        assert a.keys() == b.keys()
        for k in ("loss", "loss_iou", "loss_l1", "loss_center", "iou", "grad_norm"):
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-4, abs=1e-6), k
    assert [r["loss"] for r in runs["flipped"]] != [r["loss"] for r in runs["same"]]


@pytest.mark.parametrize("edge_weight", [0.0, 5.0])
def test_center_head_trains_resumes_exactly_and_stays_out_of_the_model(tmp_path, edge_weight):
    """With ``center_edge_weight`` the head also regresses the edges: its loss is logged and in the total."""
    head = dict(center_weight=1.0, center_edge_weight=edge_weight)
    make_trainer(tmp_path / "full", epochs=2, **head).fit()
    make_trainer(tmp_path / "split", epochs=1, **head).fit()
    make_trainer(tmp_path / "split", epochs=2, resume=True, **head).fit()
    want = loss_rows(tmp_path / "full" / "log.csv")
    assert loss_rows(tmp_path / "split" / "log.csv") == want  # the head's weights and moments resumed too
    for r in want:  # logged beside the box losses, and part of the total
        edge = float(r["loss_center_edge"]) if edge_weight else 0.0
        assert (r["loss_center_edge"] == "") == (edge_weight == 0) and edge >= 0
        assert float(r["loss_center"]) > 0 and float(r["loss"]) == pytest.approx(
            2.0 * float(r["loss_iou"]) + 5.0 * float(r["loss_l1"]) + float(r["loss_center"]) + edge_weight * edge,
            rel=1e-5)
    plain = loss_rows(make_trainer(tmp_path / "plain", epochs=2).fit().out_dir / "log.csv")
    assert [r["loss"] for r in plain] != [r["loss"] for r in want]  # the centre loss is part of the loss
    assert [r["iou"] for r in plain][0] == [r["iou"] for r in want][0]  # same first step, same boxes

    heads = [load_training_checkpoint(tmp_path / "full" / "checkpoints" / f"epoch_000{e}.pt")["center_head"]
             for e in (1, 2)]
    assert set(heads[0]) == {"weight", "bias"} and not torch.equal(heads[0]["weight"], heads[1]["weight"])  # trained
    assert heads[0]["weight"].shape == (5 if edge_weight else 1, TINY.embed_dim)  # logit (+ 4 edge distances)
    saved = load_checkpoint(tmp_path / "full" / "model.safetensors").state_dict()
    assert saved.keys() == build_model(TINY).state_dict().keys()  # the head is training-only


def test_weight_average_follows_the_ramped_decay():
    net = torch.nn.BatchNorm1d(1)  # a float parameter, a float buffer and an integer buffer
    net.weight.data.fill_(0.0)
    avg = WeightAverage(net, decay=0.5)
    assert set(avg.average) == {"weight", "bias", "running_mean", "running_var"}  # num_batches_tracked left out
    expected = 0.0
    for step, value in enumerate([1.0, 2.0, 4.0, 8.0], 1):
        net.weight.data.fill_(value)
        avg.update(step)
        d = min(0.5, (1 + step) / (10 + step))  # 0.18, 0.25, 0.31, then the decay
        expected = d * expected + (1 - d) * value
    assert avg.average["weight"].item() == pytest.approx(expected, rel=1e-6)
    assert avg.average["bias"].item() == 0.0  # constant tensors stay put
    half = net.to(torch.bfloat16)
    state = avg.averaged_model_state(half)
    assert state["weight"].dtype == torch.bfloat16 and state["num_batches_tracked"].dtype == torch.int64
    with pytest.raises(MixFormerError, match="weight average does not match"):
        avg.load_state_dict({"weight": torch.zeros(1)})


def test_weight_average_is_the_saved_model_and_resumes_exactly(tmp_path):
    make_trainer(tmp_path / "full", epochs=3, ema_decay=0.9).fit()
    make_trainer(tmp_path / "split", epochs=1, ema_decay=0.9).fit()
    make_trainer(tmp_path / "split", epochs=3, ema_decay=0.9, resume=True).fit()
    for name in ("model.safetensors", "model_last_step.safetensors"):
        a = load_checkpoint(tmp_path / "full" / name).state_dict()
        b = load_checkpoint(tmp_path / "split" / name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name  # the average was checkpointed and resumed
    averaged = load_checkpoint(tmp_path / "full" / "model.safetensors").state_dict()
    last = load_checkpoint(tmp_path / "full" / "model_last_step.safetensors").state_dict()
    ckpt = load_training_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    assert all(torch.equal(ckpt["model"][k], last[k]) for k in last)  # the last step's weights, not averaged
    assert all(torch.equal(ckpt["ema"][k], averaged[k]) for k in ckpt["ema"])
    assert not torch.equal(averaged["box_head.layers.0.0.weight"], last["box_head.layers.0.0.weight"])
    # without averaging (the same seed and data): the plain run's weights are the last step's
    plain = make_trainer(tmp_path / "plain", epochs=3).fit().out_dir
    assert not (plain / "model_last_step.safetensors").exists()
    assert "ema" not in load_training_checkpoint(plain / "checkpoints" / "last.pt")
    p = load_checkpoint(plain / "model.safetensors").state_dict()
    assert all(torch.equal(p[k], last[k]) for k in p)
    make_trainer(tmp_path / "full", epochs=1, overwrite=True).fit()  # --overwrite clears the averaging's file
    assert not (tmp_path / "full" / "model_last_step.safetensors").exists()
    with pytest.raises(ConfigError, match="ema_decay must be below 1"):
        TrainConfig(ema_decay=1.0)


def test_center_head_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="center_layer 2 is not a block of this 2-block model"):
        make_trainer(tmp_path / "a", center_weight=1.0, center_layer=2).fit()
    with pytest.raises(ConfigError, match="center_weight supervises the box stages"):
        make_trainer(tmp_path / "b", FakeTrackingData(negatives=True), stage="score", center_weight=1.0).fit()
    with pytest.raises(ConfigError, match="center_layer must be a block index"):
        TrainConfig(center_layer=1.5)
    with pytest.raises(ConfigError, match="center_weight must be a non-negative number"):
        TrainConfig(center_weight=-1.0)
    with pytest.raises(ConfigError, match="center_edge_weight .* needs center_weight > 0"):
        make_trainer(tmp_path / "c", center_edge_weight=1.0).fit()
    assert not any((tmp_path / d).exists() for d in "abc")  # refused before writing anything


def test_checkpoints_hold_training_state_and_keep_the_last_k(tmp_path):
    make_trainer(tmp_path / "r", epochs=3, keep_checkpoints=2, lr_drop_epoch=1).fit()
    ckpts = tmp_path / "r" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch_0002.pt", "epoch_0003.pt", "last.pt"]
    state = load_training_checkpoint(ckpts / "last.pt")  # weights_only=True
    assert state["epoch"] == 3 and state["global_step"] == 18
    assert set(state) >= {"model", "optimizer", "scheduler", "rng", "config", "world_size"}
    assert state["config"]["train"]["lr"] == 1e-3 and state["config"]["model"]["embed_dim"] == 32
    assert state["scheduler"]["last_epoch"] == 3
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == pytest.approx([1e-6, 1e-7])
    lrs = [float(r["lr"]) for r in read_log(tmp_path / "r" / "log.csv")]
    assert lrs[:6] == [1e-3] * 6 and lrs[6:12] == pytest.approx([1e-4] * 6)
    model = load_checkpoint(tmp_path / "r" / "model.safetensors")
    assert model.config == TINY


# -- atomic checkpoints ---------------------------------------------------------------------------------
def test_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def failing_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the save of epoch 2
            f.write(b"partial checkpoint bytes")
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    out = tmp_path / "r"
    with pytest.raises(OSError, match="No space"):
        make_trainer(out, epochs=3).fit()
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch_0001.pt", "last.pt"]  # no temp files left
    assert load_training_checkpoint(ckpts / "last.pt")["epoch"] == 1
    assert load_training_checkpoint(ckpts / "epoch_0001.pt")["epoch"] == 1
    monkeypatch.setattr(torch, "save", real_save)
    assert make_trainer(out, epochs=3, resume=True).fit().epochs_done == 3


def test_atomic_torch_save_replaces_only_complete_files(tmp_path, monkeypatch):
    path = tmp_path / "x.pt"
    atomic_torch_save({"a": torch.ones(2)}, path)

    def broken(obj, f, *a, **k):
        f.write(b"junk")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"a": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_stale_temp_files_of_a_killed_save_are_removed_on_resume(tmp_path):
    out = tmp_path / "r"
    make_trainer(out, epochs=1).fit()
    stale = out / "checkpoints" / ".epoch_0002.pt.abc123.tmp"
    stale.write_bytes(b"half")
    make_trainer(out, epochs=2, resume=True).fit()
    assert not stale.exists()


# -- output folder protection ----------------------------------------------------------------------------
def test_refuses_a_non_empty_folder_and_keeps_user_files(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match="not empty.*--overwrite"):
        make_trainer(out).fit()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    with pytest.raises(TrainingError, match="holds no training run"):
        make_trainer(out, resume=True).fit()

    make_trainer(out, epochs=1, overwrite=True).fit()  # writes beside the user's file
    assert (out / "notes.txt").read_text() == "mine"
    with pytest.raises(TrainingError, match="already holds this training run.*--resume"):
        make_trainer(out, epochs=1).fit()
    with pytest.raises(TrainingError, match="different training run.*train.lr"):
        make_trainer(out, epochs=1, lr=5e-4).fit()

    make_trainer(out, epochs=1, lr=5e-4, overwrite=True).fit()
    assert (out / "notes.txt").read_text() == "mine"
    rows = read_log(out / "log.csv")
    assert len(rows) == 6 and {r["lr"] for r in rows} == {"0.0005"}
    assert json.loads((out / "run_config.json").read_text())["train"]["lr"] == 5e-4
    with pytest.raises(ConfigError, match="exclude"):
        make_trainer(out, resume=True, overwrite=True)


def test_resume_with_changed_settings_names_them(tmp_path):
    out = tmp_path / "r"
    make_trainer(out, epochs=1).fit()
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.001 -> 0\.002") as exc:
        make_trainer(out, epochs=2, lr=2e-3, resume=True).fit()
    assert isinstance(exc.value, MixFormerError)
    with pytest.raises(ConfigError, match=r"model\.feat_sz.*train\.batch_size|train\.batch_size.*model\.feat_sz"):
        make_trainer(out, model_cfg=TINY.replace(feat_sz=8), batch_size=2, epochs=2, resume=True).fit()
    # epochs, workers, log_every may change
    assert make_trainer(out, epochs=2, workers=1, log_every=3, resume=True).fit().epochs_done == 2


# -- multi-process --------------------------------------------------------------------------------------
DDP_SCRIPT = """
import json, os, sys
sys.path[:0] = [{src!r}, {tests!r}]
import torch
from test_trainer import FakeTrackingData, TINY
from mixformerv2 import build_model
from mixformerv2.training.trainer import Trainer, TrainConfig

out, seen_dir = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
data = FakeTrackingData(n=16, record=True)
cfg = TrainConfig(epochs=1, batch_size=2, lr=1e-3, workers=0, log_every=1, seed=3, center_weight=1.0,
                  ema_decay=0.5)
Trainer(build_model(TINY), data, cfg, out, device="cpu", progress=False, data_config={{"fake": 16}}).fit()
rank = int(os.environ["RANK"])
with open(os.path.join(seen_dir, f"seen_{{rank}}.json"), "w") as f:
    json.dump({{"seen": data.seen, "world": int(os.environ["WORLD_SIZE"])}}, f)
"""


def test_torchrun_two_processes_gloo(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(src=str(SRC), tests=str(Path(__file__).resolve().parent)))
    out, seen = tmp_path / "ddp", tmp_path / "seen"
    seen.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(out), str(seen)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # one writer: one checkpoint, one log with one row per (global) iteration
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0001.pt", "last.pt"]
    state = load_training_checkpoint(out / "checkpoints" / "last.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    rows = read_log(out / "log.csv")
    assert len(rows) == 4  # 16 samples / 2 ranks / batch 2
    # the ranks saw disjoint halves of the epoch's samples
    seen0 = json.loads((seen / "seen_0.json").read_text())
    seen1 = json.loads((seen / "seen_1.json").read_text())
    assert seen0["world"] == seen1["world"] == 2
    s0, s1 = {i for _, i in seen0["seen"]}, {i for _, i in seen1["seen"]}
    assert len(s0) == len(s1) == 8 and not (s0 & s1) and s0 | s1 == set(range(16))
    assert int(rows[-1]["step"]) == 4 and sum(int(r["resampled"]) for r in rows) == sum(i % 3 == 0 for i in range(16))

    # DDP averages gradients (the training-only centre head's too): the same as one process with the
    # global batch, up to rounding
    single = make_trainer(tmp_path / "single", FakeTrackingData(n=16), epochs=1, batch_size=4, seed=3)
    single.config = TrainConfig(epochs=1, batch_size=4, lr=1e-3, workers=0, log_every=1, seed=3, center_weight=1.0,
                                ema_decay=0.5)
    single.fit()
    ref = read_log(tmp_path / "single" / "log.csv")
    for a, b in zip(rows, ref):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-4, abs=1e-5)
    # rank 0 averaged the weights DDP broadcast and kept in step: the single process's average
    for name in ("model.safetensors", "model_last_step.safetensors"):
        a = load_checkpoint(out / name).state_dict()
        b = load_checkpoint(tmp_path / "single" / name).state_dict()
        assert all(torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-5) for k in a), name


# -- numerics and logging ---------------------------------------------------------------------------------
def test_bf16_autocast_run_completes(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "native_bf16", lambda device: True)  # autocast even on AVX2 CPUs
    trainer = make_trainer(tmp_path / "r", epochs=1, bf16=True)
    result = trainer.fit()
    assert trainer.autocast_bf16
    rows = read_log(tmp_path / "r" / "log.csv")
    assert result.epochs_done == 1 and all(math.isfinite(float(r["loss"])) for r in rows)
    fp32 = loss_rows(make_trainer(tmp_path / "f", epochs=1).fit().out_dir / "log.csv")
    assert [r["loss"] for r in loss_rows(tmp_path / "r" / "log.csv")] != [r["loss"] for r in fp32]
    model = load_checkpoint(result.model_path)
    assert next(model.parameters()).dtype == torch.float32  # weights stay float32 under autocast


def test_bf16_without_native_units_trains_in_float32_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hardware, "native_bf16", lambda device: False)  # e.g. an AVX2-only CPU
    trainer = make_trainer(tmp_path / "b", epochs=1, bf16=True)
    trainer.fit()
    assert not trainer.autocast_bf16
    assert "bf16 autocast off" in capsys.readouterr().out
    make_trainer(tmp_path / "f", epochs=1).fit()
    assert loss_rows(tmp_path / "b" / "log.csv") == loss_rows(tmp_path / "f" / "log.csv")


def test_csv_columns_and_values(tmp_path):
    make_trainer(tmp_path / "r", epochs=2, log_every=4).fit()
    path = tmp_path / "r" / "log.csv"
    assert path.read_text().splitlines()[0].split(",") == list(CSV_COLUMNS)
    rows = read_log(path)
    # 6 iterations per epoch, a row every 4 and at the epoch's end
    assert [(r["epoch"], r["iter"], r["step"]) for r in rows] == [
        ("1", "4", "4"), ("1", "6", "6"), ("2", "4", "10"), ("2", "6", "12")]
    for r in rows:
        assert float(r["loss"]) == pytest.approx(2.0 * float(r["loss_iou"]) + 5.0 * float(r["loss_l1"]), rel=1e-6)
        assert 0.0 <= float(r["iou"]) <= 1.0 and float(r["grad_norm"]) > 0 and float(r["samples_per_s"]) > 0
        assert r["loss_score"] == r["loss_dfl"] == r["loss_center"] == ""  # not trained: empty, not 0
        assert float(r["lr_backbone"]) == pytest.approx(float(r["lr"]) * 0.1)
    # corrupt/invalid draws the sampler reported, summed per window: 8 of the 24 items per epoch
    assert sum(int(r["resampled"]) for r in rows[:2]) == 8 and sum(int(r["resampled"]) for r in rows[2:]) == 8


def test_resuming_a_log_with_older_columns_rewrites_it_keeping_its_values(tmp_path):
    import csv

    make_trainer(tmp_path / "r", epochs=1, log_every=3).fit()
    path = tmp_path / "r" / "log.csv"
    rows = read_log(path)
    old = [c for c in CSV_COLUMNS if c not in ("loss_dfl", "loss_center")]  # the columns before they existed
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=old, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    make_trainer(tmp_path / "r", epochs=2, log_every=3, resume=True).fit()
    assert path.read_text().splitlines()[0].split(",") == list(CSV_COLUMNS)
    after = read_log(path)
    assert [r["epoch"] for r in after] == ["1", "1", "2", "2"] and None not in after[-1]
    assert [{k: r[k] for k in old} for r in after[:2]] == [{k: r[k] for k in old} for r in rows]


def test_tensorboard_is_optional(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    monkeypatch.setattr(trainer_mod, "_TB_WARNED", False)
    with pytest.warns(UserWarning, match="TensorBoard logging disabled"):
        make_trainer(tmp_path / "r", epochs=1).fit()
    assert (tmp_path / "r" / "log.csv").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        make_trainer(tmp_path / "r2", epochs=1).fit()


def test_tensorboard_scalars_when_installed(tmp_path):
    import tensorboard  # noqa: F401  (a test dependency)
    make_trainer(tmp_path / "r", epochs=1).fit()
    assert list((tmp_path / "r" / "tb").glob("events.out.tfevents.*"))


def test_data_shapes_must_match_the_model(tmp_path):
    with pytest.raises(ConfigError, match="search crops of shape"):
        make_trainer(tmp_path / "r", FakeTrackingData(search=32)).fit()


def test_init_weights_allows_missing_score_head(tmp_path):
    from mixformerv2 import save_checkpoint

    torch.manual_seed(1)
    src = build_model(TINY.replace(score_head=False))
    path = save_checkpoint(src, tmp_path / "gt.safetensors")
    trainer = make_trainer(tmp_path / "r", FakeTrackingData(negatives=True), epochs=1, stage="score",
                           init_weights=str(path))
    trainer.fit()
    got = trainer.model.state_dict()
    assert all(torch.equal(v, got[k]) for k, v in src.state_dict().items())  # frozen, loaded weights


# -- recipes and the command line -----------------------------------------------------------------------
def test_builtin_recipes_load():
    assert {"mixformerv2-b-gt", "tiny-cpu"} <= set(available_recipes())
    b = load_recipe("mixformerv2-b-gt")
    assert b.model.depth == 8 and b.model.search_size == 288 and b.model.feat_sz == 96
    t = b.train
    assert (t.batch_size, t.lr, t.backbone_lr_mult, t.weight_decay, t.grad_clip) == (32, 1e-4, 0.1, 1e-4, 0.1)
    assert (t.iou_type, t.iou_weight, t.l1_weight, t.stage) == ("ciou", 2.0, 5.0, "gt")
    assert [d.name for d in b.datasets] == ["got10k", "lasot", "coco", "trackingnet"]
    default, score = load_recipe("mixformerv2-tiny"), load_recipe("mixformerv2-tiny-score")
    assert score.model == default.model.replace(score_head=True) and score.train.stage == "score"  # one architecture
    assert score.train.init_weights == "runs/default/model.safetensors"  # where `make default-model` writes it
    tiny = load_recipe("tiny-cpu")
    assert tiny.model.search_size == 128 and tiny.model.template_size == 64
    with pytest.raises(ConfigError, match="--data got10k="):
        tiny.check_roots()
    assert tiny.with_data_roots({"got10k": "/x"}).datasets[0].root == "/x"
    with pytest.raises(ConfigError, match="not datasets of recipe"):
        tiny.with_data_roots({"lasot": "/x"})
    assert parse_data_overrides(["got10k=/a=b"]) == {"got10k": "/a=b"}
    with pytest.raises(ConfigError, match="NAME=ROOT"):
        parse_data_overrides(["got10k"])
    assert parse_assignments(["teacher=/w/t.pth"], "--input") == {"teacher": "/w/t.pth"}
    with pytest.raises(ConfigError, match="--input expects NAME=PATH"):
        parse_assignments(["teacher="], "--input")


def _write_recipe(path, **sections):
    import yaml

    base = {
        "model": {"preset": "mixformerv2-s", "embed_dim": 32, "depth": 1, "num_heads": 2, "template_size": 32,
                  "search_size": 64, "feat_sz": 16},
        "data": {"datasets": [{"name": "got10k", "root": None}], "sampler": {"samples_per_epoch": 8}},
        "train": {"epochs": 1, "batch_size": 4, "workers": 0, "log_every": 1},
    }
    base.update(sections)
    path.write_text(yaml.safe_dump(base))
    return path


def test_recipe_errors_name_the_file_and_keys(tmp_path):
    f = _write_recipe(tmp_path / "r.yaml")
    assert load_recipe(f).model.depth == 1
    bad = _write_recipe(tmp_path / "bad.yaml", train={"epochs": 1, "learning_rate": 1})
    with pytest.raises(ConfigError, match=r"bad\.yaml.*learning_rate"):
        load_recipe(bad)
    bad.write_text("model: mixformerv2-b\ntrain: {}\nextra: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*unknown keys \['extra'\].*missing keys \['data'\]"):
        load_recipe(bad)
    bad = _write_recipe(tmp_path / "bad2.yaml", model={"preset": "mixformerv2-s", "width": 3})
    with pytest.raises(ConfigError, match=r"bad2\.yaml: model.*width"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="unknown recipe"):
        load_recipe("no-such-recipe")
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_cli_train_user_errors_without_traceback(capsys, tmp_path):
    from mixformerv2.cli import main

    assert main(["train", "--recipe", "tiny-cpu", "--out", str(tmp_path / "o")]) == 2
    assert "--data got10k=" in capsys.readouterr().err
    assert main(["train", "--recipe", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown recipe" in capsys.readouterr().err
    assert main(["train", "--recipe", "tiny-cpu", "--data", "got10k=" + str(tmp_path / "absent"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--recipe", "tiny-cpu", "--out", "o", "--resume", "--overwrite"])


def _got10k_folder(root: Path, sequences=2, frames=24, size=96):
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    names = []
    for s in range(sequences):
        name = f"GOT-10k_Train_{s + 1:06d}"
        names.append(name)
        d = root / name
        d.mkdir(parents=True)
        boxes = []
        for i in range(frames):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            x, y = 20 + i % 10, 25 + (i * 2) % 12
            img[y : y + 30, x : x + 24] = (200, 80 + 5 * s, 40)
            cv2.imwrite(str(d / f"{i + 1:08d}.jpg"), img)
            boxes.append(f"{x},{y},24,30")
        (d / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
    (root / "list.txt").write_text("\n".join(names) + "\n")
    return root


def test_cli_train_end_to_end_on_a_got10k_folder(capsys, tmp_path):
    """Integration with the data layer (readers + TrackingSampler)."""
    import mixformerv2.data.sampling  # noqa: F401
    from mixformerv2.cli import main

    data = _got10k_folder(tmp_path / "got10k")
    recipe = _write_recipe(tmp_path / "tiny.yaml")
    out = tmp_path / "run"
    argv = ["train", "--recipe", str(recipe), "--data", f"got10k={data}", "--out", str(out), "--quiet",
            "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "model:" in capsys.readouterr().out
    assert load_checkpoint(out / "model.safetensors").config.depth == 1
    assert len(read_log(out / "log.csv")) == 2
    assert main(argv) == 2 and "--resume" in capsys.readouterr().err  # the folder now holds a run
    assert main(argv + ["--resume", "--epochs", "2"]) == 0
    assert len(read_log(out / "log.csv")) == 4


def test_motion_input_recipe_makes_six_channel_search_crops_and_trains_end_to_end(capsys, tmp_path):
    """model.motion_input gives the crops their frame-difference channels by default; a processing
    setting that contradicts the model is refused, naming both."""
    from mixformerv2.cli import main
    from mixformerv2.training.recipes import build_dataset

    data = _got10k_folder(tmp_path / "got10k")
    model = {"preset": "mixformerv2-s", "embed_dim": 32, "depth": 1, "num_heads": 2, "template_size": 32,
             "search_size": 64, "feat_sz": 16, "motion_input": True}
    recipe = _write_recipe(tmp_path / "motion.yaml", model=model)
    loaded = load_recipe(recipe).with_data_roots({"got10k": str(data)})
    sample = build_dataset(loaded)[0]
    assert sample["search"].shape == (6, 64, 64) and sample["template"].shape == (3, 32, 32)
    out = tmp_path / "run"
    assert main(["train", "--recipe", str(recipe), "--data", f"got10k={data}", "--out", str(out), "--quiet",
                 "--device", "cpu"]) == 0, capsys.readouterr().err
    trained = load_checkpoint(out / "model.safetensors")
    assert trained.config.motion_input and trained.backbone.motion_embed.proj.weight.abs().sum() > 0  # it learned
    bad = _write_recipe(tmp_path / "bad.yaml", model=model,
                        data={"datasets": [{"name": "got10k", "root": None}], "processing": {"motion_input": False}})
    with pytest.raises(ConfigError, match=r"bad\.yaml: data\.processing\.motion_input is False but the model's"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match=r"search crops of shape \(3, 64, 64\).*\(6, 64, 64\).*motion_input"):
        make_trainer(tmp_path / "r", model_cfg=TINY.replace(motion_input=True)).fit()


# -- CUDA (make test-gpu) -------------------------------------------------------------------------------
@pytest.mark.gpu
def test_cuda_training_resume_and_bf16(tmp_path):
    make_trainer(tmp_path / "full", epochs=2, device="cuda", workers=2).fit()
    make_trainer(tmp_path / "split", epochs=1, device="cuda").fit()
    result = make_trainer(tmp_path / "split", epochs=2, device="cuda", resume=True).fit()
    assert result.resumed_from is not None
    want, got = loss_rows(tmp_path / "full" / "log.csv"), loss_rows(tmp_path / "split" / "log.csv")
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for a, b in zip(got, want):  # GPU kernels need not be bitwise reproducible
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-4, abs=1e-6)
    bf16 = make_trainer(tmp_path / "bf16", epochs=1, device="cuda", bf16=True).fit()
    assert all(math.isfinite(float(r["loss"])) for r in read_log(tmp_path / "bf16" / "log.csv"))
    assert load_checkpoint(bf16.model_path).config == TINY
