"""Checkpoint I/O: our safetensors format, official .pth(.tar) layouts, refusal of pickled code,
corrupt files, architecture mismatches, describe_checkpoint and the official fixture weights."""

from __future__ import annotations

import collections
import math
import random
from pathlib import Path

import pytest
import torch

from fixtures_official import discover
from mixformerv2.config import PRESETS, ModelConfig, get_preset
from mixformerv2.errors import CheckpointError
from mixformerv2.models.checkpoints import (
    describe_checkpoint,
    expected_shapes,
    load_checkpoint,
    matching_presets,
    read_state_dict,
    save_checkpoint,
)
from mixformerv2.models.mixformerv2 import MixFormerV2

TINY = ModelConfig(embed_dim=64, depth=2, num_heads=4, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)


# -- helpers ----------------------------------------------------------------------------------------
def tiny_model(seed: int = 0, config: ModelConfig = TINY) -> MixFormerV2:
    torch.manual_seed(seed)
    model = MixFormerV2(config)
    with torch.no_grad():  # make every tensor (incl. zero-initialised ones) distinctive
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def tiny_inputs(config: ModelConfig = TINY, batch: int = 2) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    t, s = config.template_size, config.search_size
    return (
        torch.randn(batch, 3, t, t, generator=g),
        torch.randn(batch, 3, t, t, generator=g),
        torch.randn(batch, 3, s, s, generator=g),
    )


def assert_same_state(a: dict, b: dict) -> None:
    assert list(a) == list(b) or set(a) == set(b), f"keys differ: {sorted(set(a) ^ set(b))}"
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].shape == b[k].shape, k
        assert torch.equal(a[k].cpu(), b[k].cpu()), f"{k} differs"


def assert_same_outputs(m1: MixFormerV2, m2: MixFormerV2, config: ModelConfig = TINY) -> None:
    inputs = tiny_inputs(config)
    with torch.no_grad():
        o1, o2 = m1(*inputs), m2(*inputs)
    assert set(o1) == set(o2)
    assert ("pred_scores" in o1) == config.score_head
    for key in ("pred_boxes", "prob_l", "prob_r", "prob_t", "prob_b", "pred_scores", "reg_tokens"):
        if key in o1:
            assert torch.equal(o1[key], o2[key]), key


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _fixture_case(kind: str):
    cases = [c for c in discover() if c.kind == kind]
    assert cases, f"no {kind} fixture case"
    return cases[0]


# -- our safetensors format ---------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    model = tiny_model()
    path = save_checkpoint(model, tmp_path / "tiny.safetensors")
    assert path == tmp_path / "tiny.safetensors" and path.is_file()
    loaded = load_checkpoint(path)  # no preset/config: the embedded config is used
    assert loaded.config == TINY  # num_heads=4 is not inferable from shapes: proves the config was embedded
    assert not loaded.training and not any(m.training for m in loaded.modules())
    assert_same_state(model.state_dict(), loaded.state_dict())
    assert torch.equal(loaded.box_head.bin_coords, model.box_head.bin_coords)
    assert not loaded.backbone.pos_embed_s.requires_grad and not loaded.backbone.pos_embed_t.requires_grad
    assert_same_outputs(model, loaded)
    # the fast cached path works on the loaded model, too
    t, ot, s = tiny_inputs()
    with torch.no_grad():
        fast = loaded.step(s, loaded.encode_templates(t, ot))
        full = model(t, ot, s)
    torch.testing.assert_close(fast["pred_boxes"], full["pred_boxes"], atol=1e-5, rtol=0)


def test_round_trip_of_a_model_in_training_mode_and_without_score_head(tmp_path):
    cfg = TINY.replace(score_head=False, feat_sz=24, depth=1)
    model = tiny_model(3, cfg).train()
    path = save_checkpoint(model, tmp_path / "sub" / "dir" / "x.safetensors")  # parents are created
    loaded = load_checkpoint(path)
    assert loaded.config == cfg and loaded.score_head is None
    assert not loaded.training
    assert_same_state(model.state_dict(), loaded.state_dict())
    assert loaded.box_head.stride == 64 / 24
    assert torch.equal(loaded.box_head.bin_coords, torch.arange(24) * (64 / 24))


def test_embedded_config_and_metadata(tmp_path):
    from safetensors import safe_open

    path = save_checkpoint(tiny_model(), tmp_path / "m.safetensors", note="hello")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "mixformerv2" and meta["note"] == "hello"
    state, cfg = read_state_dict(path)
    assert cfg == TINY
    assert set(state) == set(expected_shapes(TINY))


def test_save_refuses_to_overwrite(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(tiny_model(0), path)
    before = path.read_bytes()
    stat = path.stat()
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(tiny_model(1), path)
    assert str(path) in str(info.value) and "overwrite" in str(info.value)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert files_in(tmp_path) == ["m.safetensors"]
    # overwrite=True replaces it
    other = tiny_model(1)
    save_checkpoint(other, path, overwrite=True)
    assert path.read_bytes() != before
    assert_same_state(other.state_dict(), load_checkpoint(path).state_dict())
    assert files_in(tmp_path) == ["m.safetensors"]


def test_atomic_write_leaves_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    model = tiny_model()
    save_checkpoint(model, path)
    save_checkpoint(model, path, overwrite=True)
    assert files_in(tmp_path) == ["m.safetensors"]
    before = path.read_bytes()

    # a failure in the middle of writing: the old file survives intact and no temp file stays behind
    import safetensors.torch

    def broken_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tiny_model(5), path, overwrite=True)
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["m.safetensors"]
    with pytest.raises(OSError):
        save_checkpoint(model, tmp_path / "new.safetensors")
    assert files_in(tmp_path) == ["m.safetensors"]


# -- official layouts ---------------------------------------------------------------------------------
def _official_variants(sd: dict) -> dict[str, object]:
    optimizer = {
        "state": {
            i: {"step": torch.tensor(7.0), "exp_avg": torch.randn(3), "exp_avg_sq": torch.rand(3)} for i in range(3)
        },
        "param_groups": [{"lr": 1e-5, "weight_decay": 1e-4, "betas": (0.9, 0.999), "params": [0, 1, 2]}],
    }
    return {
        "net.pth.tar": {"net": sd},
        "flat.pth": sd,
        "ddp.pth.tar": {f"module.{k}": v for k, v in sd.items()},
        "ddp_net.pth.tar": {"net": {f"module.{k}": v for k, v in sd.items()}},
        "training.pth.tar": {
            "epoch": 40,
            "actor_type": "MixFormerActor",
            "net_type": "MixFormer",
            "net": sd,
            "net_info": None,
            "constructor": None,
            "optimizer": optimizer,
            "stats": collections.OrderedDict(train={"Loss/total": 0.5, "Loss/iou": [0.1, 0.2]}),
        },
        "state_dict.pth": {"state_dict": sd, "epoch": 3},
    }


@pytest.mark.parametrize("name", list(_official_variants({})))
def test_official_layouts_load(tmp_path, name):
    model = tiny_model(2)
    sd = model.state_dict()
    path = tmp_path / name
    torch.save(_official_variants(sd)[name], path)
    loaded = load_checkpoint(path, config=TINY)
    assert not loaded.training
    assert_same_state(sd, loaded.state_dict())
    assert_same_outputs(model, loaded)


def test_legacy_non_zip_torch_file_loads(tmp_path):
    model = tiny_model(4)
    path = tmp_path / "legacy.pth.tar"
    torch.save({"net": model.state_dict()}, path, _use_new_zipfile_serialization=False)
    assert_same_state(model.state_dict(), load_checkpoint(path, config=TINY).state_dict())


@pytest.mark.parametrize(
    "obj",
    [[1, 2, 3], {"net": {}}, {}, {"epoch": 3}, {"net": {"a": torch.zeros(1), "b": 5}}, torch.zeros(3)],
    ids=["list", "empty-net", "empty", "no-tensors", "non-tensor-value", "bare-tensor"],
)
def test_torch_file_without_a_state_dict(tmp_path, obj):
    path = tmp_path / "odd.pth"
    torch.save(obj, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, config=TINY)
    assert str(path) in str(info.value)


# -- pickled code is refused, never executed -----------------------------------------------------------
def _touch_marker(path: str) -> "Settings":
    """Runs only if someone unpickles a Settings object: leaves a marker file behind."""
    Path(path).write_text("pickled code ran")
    return Settings(path)


class Settings:
    """Stands in for the official lib.train.admin.settings.Settings stored in training checkpoints."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_touch_marker, (self.marker,))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_pickled_code_is_refused_and_not_run(tmp_path, zip_format):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "train.pth.tar"
    sd = tiny_model().state_dict()
    torch.save(
        {"epoch": 40, "net": sd, "settings": Settings(str(marker))}, path, _use_new_zipfile_serialization=zip_format
    )
    assert not marker.exists()  # saving does not call _touch_marker
    for call in (
        lambda: load_checkpoint(path, config=TINY),
        lambda: load_checkpoint(path),
        lambda: read_state_dict(path),
        lambda: describe_checkpoint(path),
    ):
        with pytest.raises(CheckpointError) as info:
            call()
        msg = str(info.value)
        assert str(path) in msg
        assert "pickled" in msg and "refus" in msg
        assert not marker.exists(), "the pickled code was executed"

    # the marker mechanism itself works: an unsafe load DOES run the code (so the check above is meaningful)
    obj = torch.load(path, weights_only=False)
    assert marker.read_text() == "pickled code ran"
    assert isinstance(obj["settings"], Settings)


# -- corrupt and missing files ------------------------------------------------------------------------
def _valid_file(tmp_path: Path, suffix: str) -> Path:
    model = tiny_model()
    if suffix == ".safetensors":
        return save_checkpoint(model, tmp_path / "valid.safetensors")
    path = tmp_path / f"valid{suffix}"
    torch.save({"net": model.state_dict()}, path)
    return path


@pytest.mark.parametrize("suffix", [".pth.tar", ".pth", ".safetensors"])
@pytest.mark.parametrize("damage", ["first-half", "all-but-last-byte", "first-64-bytes", "random", "text", "empty"])
def test_corrupt_files_raise_checkpoint_error_naming_the_path(tmp_path, suffix, damage):
    data = _valid_file(tmp_path, suffix).read_bytes()
    content = {
        "first-half": data[: len(data) // 2],
        "all-but-last-byte": data[:-1],
        "first-64-bytes": data[:64],
        "random": random.Random(f"{suffix}{damage}").randbytes(4096),
        "text": b"This is not a checkpoint.\nJust some text, e.g. a README saved under the wrong name.\n",
        "empty": b"",
    }[damage]
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(content)
    calls = (
        lambda: load_checkpoint(path, config=TINY),
        lambda: load_checkpoint(path),
        lambda: describe_checkpoint(path),
    )
    for call in calls:
        with pytest.raises(CheckpointError) as info:
            call()
        msg = str(info.value)
        assert str(path) in msg
        assert "pickled code" not in msg  # damaged files are not mistaken for files with pickled objects


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_never_escape_as_other_errors(tmp_path, seed):
    path = tmp_path / "noise.pth"
    path.write_bytes(random.Random(seed).randbytes(1000 + 97 * seed))
    with pytest.raises(CheckpointError, match="noise.pth"):
        read_state_dict(path)


def test_missing_file_and_directory(tmp_path):
    path = tmp_path / "nope.pth.tar"
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors", config=TINY)
    with pytest.raises(CheckpointError, match=str(tmp_path).replace("\\", "\\\\")):
        load_checkpoint(tmp_path)  # a directory is not a checkpoint
    with pytest.raises(CheckpointError):
        describe_checkpoint(path)


def test_empty_file_message(tmp_path):
    path = tmp_path / "empty.pth.tar"
    path.touch()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, config=TINY)
    assert str(path) in str(info.value) and "empty" in str(info.value)


# -- wrong architecture -------------------------------------------------------------------------------
def test_fixture_student_with_s_preset_names_shape_mismatches():
    case = _fixture_case("student")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(case.path / "checkpoint.pth", preset="mixformerv2-s")
    msg = str(info.value)
    assert str(case.path / "checkpoint.pth") in msg
    assert "shape mismatches" in msg
    assert "backbone.pos_embed_s" in msg
    assert "(1, 16, 64)" in msg and "(1, 196, 768)" in msg  # checkpoint shape vs model shape
    assert "fits no preset" in msg  # hint: the fixture is a custom architecture
    dims = case.config["dims"]
    assert f"embed_dim={dims['embed_dim']}" in msg and f"depth={dims['depth']}" in msg


def test_missing_key_is_named(tmp_path):
    sd = tiny_model().state_dict()
    del sd["backbone.blocks.1.attn.proj.bias"]
    path = tmp_path / "missing.pth.tar"
    torch.save({"net": sd}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, config=TINY)
    msg = str(info.value)
    assert "missing keys (1)" in msg and "backbone.blocks.1.attn.proj.bias" in msg
    assert "unexpected keys" not in msg and "shape mismatches" not in msg
    assert str(path) in msg


def test_unexpected_key_is_named(tmp_path):
    sd = tiny_model().state_dict()
    sd["backbone.cls_token"] = torch.zeros(1, 1, 64)
    path = tmp_path / "extra.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, config=TINY)
    msg = str(info.value)
    assert "unexpected keys (1)" in msg and "backbone.cls_token" in msg
    assert "missing keys" not in msg


def test_many_problems_are_summarised(tmp_path):
    sd = tiny_model().state_dict()
    path = tmp_path / "deeper.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, config=TINY.replace(depth=4))
    msg = str(info.value)
    assert "missing keys (24)" in msg  # 12 tensors per block, blocks 2 and 3
    assert "(+16 more)" in msg
    assert "backbone.blocks.2." in msg


@pytest.fixture(scope="module")
def s_shaped_checkpoint(tmp_path_factory) -> Path:
    """A .pth whose shapes are those of preset mixformerv2-s (stride-0 tensors: ~16 KB, not 65 MB)."""
    shapes = expected_shapes(get_preset("mixformerv2-s").model)
    path = tmp_path_factory.mktemp("s") / "small.pth"
    torch.save({"net": {k: torch.zeros(()).expand(s) for k, s in shapes.items()}}, path)
    assert path.stat().st_size < 1_000_000
    return path


def test_s_checkpoint_with_b_preset_recommends_s(s_shaped_checkpoint):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(s_shaped_checkpoint, preset="mixformerv2-b")
    msg = str(info.value)
    assert "mixformerv2-s" in msg and "--preset mixformerv2-s" in msg
    assert "backbone.pos_embed_s: checkpoint (1, 196, 768) vs model (1, 324, 768)" in msg
    assert "missing keys (48)" in msg  # blocks 4..7 of B


def test_s_checkpoint_without_preset_resolves_to_s(s_shaped_checkpoint):
    state, embedded = read_state_dict(s_shaped_checkpoint)
    assert embedded is None
    assert matching_presets({k: tuple(v.shape) for k, v in state.items()}) == ["mixformerv2-s"]
    model = load_checkpoint(s_shaped_checkpoint)
    assert model.config == PRESETS["mixformerv2-s"].model
    assert len(model.backbone.blocks) == 4
    info = describe_checkpoint(s_shaped_checkpoint)
    assert info["preset"] == "mixformerv2-s"
    assert info["parameters"] == 16_228_897 and info["tensors"] == 66  # spec §6.3


# -- describe_checkpoint ------------------------------------------------------------------------------
def test_describe_fixture_student_checkpoint():
    case = _fixture_case("student")
    path = case.path / "checkpoint.pth"
    raw = torch.load(path, map_location="cpu", weights_only=True)["net"]
    info = describe_checkpoint(path)
    assert info["preset"] == "custom"
    assert info["path"] == str(path)
    assert info["parameters"] == sum(v.numel() for v in raw.values()) == case.config["model"]["num_elements"]
    assert info["tensors"] == len(raw) == case.config["model"]["num_tensors"]
    assert info["dtype"] == "float32"
    assert "official" in info["format"]
    cfg = info["config"]
    dims = case.config["dims"]
    assert (cfg.embed_dim, cfg.depth, cfg.mlp_hidden, cfg.search_size, cfg.template_size) == (
        dims["embed_dim"], dims["depth"], dims["mlp_hidden"], dims["search_size"], dims["template_size"]
    )


def test_describe_own_file_reports_embedded_config(tmp_path):
    model = tiny_model()
    path = save_checkpoint(model, tmp_path / "own.safetensors")
    info = describe_checkpoint(path)
    assert info["config"] == TINY  # num_heads 4 (shape inference would say 1)
    assert info["preset"] == "custom"
    assert info["format"] == "mixformerv2 safetensors"
    assert info["tensors"] == len(model.state_dict())
    assert info["parameters"] == sum(v.numel() for v in model.state_dict().values())
    assert info["parameters"] == sum(math.prod(s) for s in expected_shapes(TINY).values())


# -- official fixture weights -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["online", "student"])
def test_fixture_safetensors_and_pth_are_bit_identical(kind):
    case = _fixture_case(kind)
    cfg = case.model_config
    from_st = load_checkpoint(case.path / "weights.safetensors", config=cfg)
    from_pth = load_checkpoint(case.path / "checkpoint.pth", config=cfg)
    raw = torch.load(case.path / "checkpoint.pth", map_location="cpu", weights_only=True)["net"]
    assert_same_state(from_st.state_dict(), from_pth.state_dict())
    assert_same_state(raw, from_pth.state_dict())
    assert list(from_pth.state_dict()) == [k for k, _s, _d in case.config["model"]["state_dict"]]  # official order
    assert from_pth.config == cfg and not from_pth.training
    assert from_pth.box_head.stride == cfg.search_size / cfg.feat_sz
    assert_same_outputs(from_st, from_pth, cfg)


def test_fixture_pth_without_config_resolves_by_shapes():
    case = _fixture_case("online")
    model = load_checkpoint(case.path / "checkpoint.pth")  # no preset fits: inferred from the shapes
    assert model.config.replace(num_heads=case.model_config.num_heads) == case.model_config
