"""Model/tracker configuration: presets, validation, per-dataset settings, official YAML import."""

from __future__ import annotations

import dataclasses
import math
import textwrap

import pytest

from fixtures_official import discover
from mixformerv2.config import (
    PRESETS,
    ModelConfig,
    TrackerConfig,
    config_from_json,
    config_to_json,
    configs_from_official_yaml,
    get_preset,
    infer_config_from_shapes,
)
from mixformerv2.errors import ConfigError, MixFormerError
from mixformerv2.models.checkpoints import expected_shapes

TINY = dict(embed_dim=64, depth=2, num_heads=4, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)


# -- presets --------------------------------------------------------------------------------------
def test_preset_b_matches_official_288_depth8_score():
    m = get_preset("mixformerv2-b").model
    assert (m.embed_dim, m.depth, m.num_heads, m.mlp_ratio) == (768, 8, 12, 4.0)
    assert (m.patch_size, m.template_size, m.search_size, m.feat_sz, m.score_head) == (16, 128, 288, 96, True)
    assert m.head_dim == 64
    assert m.mlp_hidden == 3072
    assert (m.feat_sz_t, m.feat_sz_s) == (8, 18)
    assert (m.num_template_tokens, m.num_search_tokens) == (64, 324)  # spec §1.3 token layout
    assert type(m.bin_stride) is float and m.bin_stride == 288 / 96 == 3.0


def test_preset_s_matches_official_224_depth4_mlp1_score():
    m = get_preset("mixformerv2-s").model
    assert (m.embed_dim, m.depth, m.num_heads, m.mlp_ratio) == (768, 4, 12, 1.0)
    assert (m.patch_size, m.template_size, m.search_size, m.feat_sz, m.score_head) == (16, 112, 224, 96, True)
    assert m.head_dim == 64
    assert m.mlp_hidden == 768
    assert (m.feat_sz_t, m.feat_sz_s) == (7, 14)
    assert (m.num_template_tokens, m.num_search_tokens) == (49, 196)
    assert type(m.bin_stride) is float and m.bin_stride == 224 / 96 == 2.3333333333333335


@pytest.mark.parametrize(
    "name, entries, elements",
    [("mixformerv2-b", 114, 58_855_201), ("mixformerv2-s", 66, 16_228_897)],  # spec §6.2 / §6.3
)
def test_preset_state_dict_sizes_match_spec(name, entries, elements):
    shapes = expected_shapes(get_preset(name).model)  # meta device: nothing allocated
    assert len(shapes) == entries
    assert sum(math.prod(s) for s in shapes.values()) == elements


@pytest.mark.parametrize(
    "spelling, expected",
    [
        ("mixformerv2-b", "mixformerv2-b"),
        ("MixFormerV2_B", "mixformerv2-b"),
        ("MIXFORMERV2-B", "mixformerv2-b"),
        ("mixformerv2_s", "mixformerv2-s"),
        ("MixFormerV2-S", "mixformerv2-s"),
    ],
)
def test_get_preset_spelling_variants(spelling, expected):
    preset = get_preset(spelling)
    assert preset is PRESETS[expected]
    assert preset.name == expected


@pytest.mark.parametrize("bad", ["mixformerv2-l", "mixformer", "", "b"])
def test_unknown_preset_lists_available(bad):
    with pytest.raises(ConfigError) as info:
        get_preset(bad)
    msg = str(info.value)
    assert repr(bad) in msg
    for name in PRESETS:
        assert name in msg
    assert isinstance(info.value, MixFormerError)


# -- validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, fields",
    [
        (dict(embed_dim=64, num_heads=3), ("embed_dim", "num_heads")),
        (dict(search_size=70), ("search_size", "patch_size")),
        (dict(template_size=40), ("template_size", "patch_size")),
        (dict(depth=0), ("depth",)),
        (dict(depth=-2), ("depth",)),
        (dict(depth=2.0), ("depth",)),
        (dict(depth=True), ("depth",)),
        (dict(num_heads=0), ("num_heads",)),
        (dict(feat_sz=0), ("feat_sz",)),
        (dict(patch_size=0), ("patch_size",)),
        (dict(mlp_ratio=-1.0), ("mlp_ratio",)),
        (dict(mlp_ratio=0), ("mlp_ratio",)),
        (dict(mlp_ratio=0.001), ("mlp_ratio",)),  # int(64 * 0.001) == 0 hidden units
        (dict(mlp_ratio="4"), ("mlp_ratio",)),
        (dict(embed_dim=30, num_heads=3), ("embed_dim",)),  # 30 % 4 != 0: no 2-D sin-cos table
    ],
)
def test_invalid_model_config_names_the_field(changes, fields):
    with pytest.raises(ConfigError) as info:
        ModelConfig(**{**TINY, **changes})
    msg = str(info.value)
    for name in fields:
        assert name in msg, msg
    assert isinstance(info.value, ValueError)


def test_tiny_config_is_valid_and_derives_its_numbers():
    m = ModelConfig(**TINY)
    assert (m.head_dim, m.mlp_hidden, m.feat_sz_t, m.feat_sz_s) == (16, 128, 2, 4)
    assert m.bin_stride == 4.0 and type(m.bin_stride) is float
    odd = ModelConfig(**{**TINY, "search_size": 64, "feat_sz": 24})
    assert odd.bin_stride == 64 / 24


def test_model_config_is_frozen_and_replace_validates():
    m = ModelConfig(**TINY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.depth = 3  # type: ignore[misc]
    assert m.replace(depth=3).depth == 3 and m.depth == 2
    with pytest.raises(ConfigError, match="depth"):
        m.replace(depth=0)


def test_from_dict_round_trip_and_unknown_keys():
    m = ModelConfig(**TINY)
    assert ModelConfig.from_dict(m.to_dict()) == m
    assert config_from_json(config_to_json(m)) == m
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict({**m.to_dict(), "hidden_dim": 64, "drop_path": 0.1})
    msg = str(info.value)
    assert "hidden_dim" in msg and "drop_path" in msg
    with pytest.raises(ConfigError, match="embed_dim"):
        ModelConfig.from_dict({**m.to_dict(), "embed_dim": 63})


def test_config_from_json_rejects_garbage():
    with pytest.raises(ConfigError):
        config_from_json("{not json")
    with pytest.raises(ConfigError, match="unknown"):
        config_from_json('{"width": 3}')


# -- tracker settings per dataset -----------------------------------------------------------------
@pytest.mark.parametrize(
    "dataset, interval, factor",
    [
        ("lasot", 200, 5.0),
        ("LaSOT", 200, 5.0),
        ("got10k_test", 10, 5.0),
        ("trackingnet", 25, 5.0),
        ("vot20", 10, 4.5),
        ("vot20lt", 200, 4.5),
        ("vot22stb", 10, 4.5),  # official default TEST.UPDATE_INTERVALS.VOT22STB = [10] (spec §2.4)
        ("otb", 200, 4.5),
        ("my_own_videos", 200, 4.5),
    ],
)
def test_for_dataset_b(dataset, interval, factor):
    base = get_preset("mixformerv2-b").tracker
    t = base.for_dataset(dataset)
    assert t.update_interval == interval
    assert t.search_factor == factor
    assert t.template_factor == 2.0 and t.score_threshold == 0.5 and t.clip_margin == 10
    assert (base.update_interval, base.search_factor) == (200, 4.5)  # the preset itself is unchanged


@pytest.mark.parametrize(
    "dataset, interval, factor",
    [
        ("got10k_test", 15, 4.55),
        ("GOT10K_TEST", 15, 4.55),
        ("lasot", 200, 4.4),
        ("trackingnet", 25, 4.55),
        ("uav", 200, 4.5),
    ],
)
def test_for_dataset_s(dataset, interval, factor):
    t = get_preset("mixformerv2-s").tracker.for_dataset(dataset)
    assert (t.update_interval, t.search_factor) == (interval, factor)


def test_tracker_config_validation():
    with pytest.raises(ConfigError):
        TrackerConfig(update_interval=0)
    with pytest.raises(ConfigError):
        TrackerConfig(update_interval=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        TrackerConfig(search_factor=-4.5)
    with pytest.raises(ConfigError):
        TrackerConfig(template_factor=0.0)
    assert TrackerConfig() == TrackerConfig(2.0, 4.5, 200, 0.5, 1.0, 10)
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(ConfigError, match="hold_below must be a score strictly between 0 and 1"):
            TrackerConfig(hold_below=bad)
    for bad in (1.0, 0.5, -2.0, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="max_scale_change must be a factor above 1"):
            TrackerConfig(max_scale_change=bad)


def test_tracker_config_overridden_takes_only_the_given_settings():
    base = TrackerConfig(search_factor=5.0, hold_below=0.3)
    assert base.overridden(search_factor=None, update_interval=None, hold_below=None) is base
    assert base.overridden(update_interval=10, hold_below=None) == TrackerConfig(search_factor=5.0, update_interval=10,
                                                                                 hold_below=0.3)
    assert base.overridden(hold_below=0.1).hold_below == 0.1


# -- official YAML import -------------------------------------------------------------------------
def _online_yaml(search: int, template: int, search_factor: float, depth: int, mlp_ratio: int, got10k: int) -> str:
    """An official mixformer2_vit_online experiment YAML, with the keys spec §2.3 lists."""
    return f"""\
DATA:
  SAMPLER_MODE: trident_pro
  MAX_SAMPLE_INTERVAL: [200]
  MEAN: [0.485, 0.456, 0.406]
  STD: [0.229, 0.224, 0.225]
  SEARCH:
    CENTER_JITTER: 4.5
    FACTOR: {search_factor}
    SCALE_JITTER: 0.5
    SIZE: {search}
  TEMPLATE:
    CENTER_JITTER: 0
    FACTOR: 2.0
    SCALE_JITTER: 0
    SIZE: {template}
    NUMBER: 2
  TRAIN:
    DATASETS_NAME: [GOT10K_vottrain, LASOT, COCO17, TRACKINGNET]
    DATASETS_RATIO: [1, 1, 1, 1]
    SAMPLE_PER_EPOCH: 60000
  VAL:
    DATASETS_NAME: [GOT10K_votval]
    DATASETS_RATIO: [1]
    SAMPLE_PER_EPOCH: 10000
MODEL:
  VIT_TYPE: base_patch16
  BACKBONE:
    DEPTH: {depth}
    MLP_RATIO: {mlp_ratio}
    PRETRAINED: False
    PRETRAINED_PATH: ./models/mae_pretrain_vit_base.pth
  HEAD_TYPE: MLP
  HEAD_FREEZE_BN: True
  HIDDEN_DIM: 768
  FEAT_SZ: 96
  PREDICT_MASK: False
  PRETRAINED_STATIC: True
TRAIN:
  BACKBONE_MULTIPLIER: 0.1
  BATCH_SIZE: 32
  EPOCH: 40
  TRAIN_SCORE: True
  IOU_WEIGHT: 2.0
  GRAD_CLIP_NORM: 0.1
  L1_WEIGHT: 5.0
  LR: 0.0001
  LR_DROP_EPOCH: 20
  NUM_WORKER: 8
  OPTIMIZER: ADAMW
  PRINT_INTERVAL: 50
  SCHEDULER:
    TYPE: step
    DECAY_RATE: 0.1
  VAL_EPOCH_INTERVAL: 5
  WEIGHT_DECAY: 0.0001
TEST:
  SEARCH_FACTOR: 4.5
  SEARCH_SIZE: {search}
  TEMPLATE_FACTOR: 2.0
  TEMPLATE_SIZE: {template}
  UPDATE_INTERVALS:
    LASOT: [200]
    GOT10K_TEST: [{got10k}]
    TRACKINGNET: [25]
    VOT20: [10]
    VOT20LT: [200]
  ONLINE_SIZES:
    LASOT: [1]
    GOT10K_TEST: [1]
    TRACKINGNET: [1]
    VOT20: [1]
    VOT20LT: [1]
"""


YAML_B = _online_yaml(search=288, template=128, search_factor=5.0, depth=8, mlp_ratio=4, got10k=10)
YAML_S = _online_yaml(search=224, template=112, search_factor=4.5, depth=4, mlp_ratio=1, got10k=15)


def test_reproduced_yaml_is_what_the_spec_lists(tmp_path):
    """Guard for the test data itself: the YAML text parses into the §2.3 values."""
    import yaml

    b, s = yaml.safe_load(YAML_B), yaml.safe_load(YAML_S)
    assert set(b) == set(s) == {"DATA", "MODEL", "TRAIN", "TEST"}
    assert b["DATA"]["SEARCH"] == {"CENTER_JITTER": 4.5, "FACTOR": 5.0, "SCALE_JITTER": 0.5, "SIZE": 288}
    assert s["DATA"]["SEARCH"]["SIZE"] == 224 and s["DATA"]["SEARCH"]["FACTOR"] == 4.5
    assert b["DATA"]["TEMPLATE"]["SIZE"] == 128 and s["DATA"]["TEMPLATE"]["SIZE"] == 112
    assert b["DATA"]["MAX_SAMPLE_INTERVAL"] == [200]
    assert b["MODEL"]["BACKBONE"]["DEPTH"] == 8 and s["MODEL"]["BACKBONE"]["MLP_RATIO"] == 1
    assert b["TEST"]["UPDATE_INTERVALS"]["GOT10K_TEST"] == [10] and s["TEST"]["UPDATE_INTERVALS"]["GOT10K_TEST"] == [15]
    assert b["TRAIN"]["TRAIN_SCORE"] is True and b["TRAIN"]["LR"] == 0.0001


@pytest.mark.parametrize(
    "text, preset, got10k",
    [(YAML_B, "mixformerv2-b", 10), (YAML_S, "mixformerv2-s", 15)],
    ids=["288_depth8_score", "224_depth4_mlp1_score"],
)
def test_official_online_yaml_gives_the_preset(tmp_path, text, preset, got10k):
    path = tmp_path / f"{preset}.yaml"
    path.write_text(text)
    model, tracker = configs_from_official_yaml(path)
    assert model == PRESETS[preset].model
    assert tracker.search_factor == 4.5  # TEST.SEARCH_FACTOR (the scripts' 5.0 / 4.4 / 4.55 are not in the YAML)
    assert tracker.template_factor == 2.0
    assert tracker.update_interval == 200  # DATA.MAX_SAMPLE_INTERVAL[0]: the fallback for unlisted datasets
    expected = {"lasot": 200, "got10k_test": got10k, "trackingnet": 25, "vot20": 10, "vot20lt": 200}
    assert {k: tracker.update_intervals[k] for k in expected} == expected
    # the YAML only overrides entries: official config.py defaults (VOT22STB [10], TNL2K [200]) survive the merge
    assert tracker.update_intervals["vot22stb"] == 10
    assert tracker.update_intervals.get("tnl2k", 200) == 200
    assert dict(tracker.update_intervals) == dict(PRESETS[preset].tracker.update_intervals)
    assert tracker.for_dataset("GOT10K_TEST").update_interval == got10k
    assert tracker.for_dataset("otb").update_interval == 200


def test_stage2_student_yaml(tmp_path):
    """student_288_depth8 (72 bins, no score head): 110 entries / 58,245,336 elements (spec §6.4)."""
    path = tmp_path / "student_288_depth8.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            DATA:
              MAX_SAMPLE_INTERVAL: 200
              SEARCH: {CENTER_JITTER: 4.5, FACTOR: 5.0, SCALE_JITTER: 0.5, SIZE: 288}
              TEMPLATE: {CENTER_JITTER: 0, FACTOR: 2.0, SCALE_JITTER: 0, SIZE: 128, NUMBER: 2}
            MODEL:
              VIT_TYPE: base_patch16
              FEAT_SZ: 72
              BACKBONE: {DEPTH: 8, DEPTH_TEACHER: 12, MLP_RATIO: 4, PRETRAINED: True}
              HEAD_TYPE: MLP
              HIDDEN_DIM: 768
              PREDICT_MASK: False
            TRAIN:
              EPOCH: 500
              REMOVE_LAYERS: []
              INVALID_LAYERS: [0, 3, 6, 9]
            TEST:
              EPOCH: 500
              SEARCH_FACTOR: 4.5
              SEARCH_SIZE: 288
              TEMPLATE_FACTOR: 2.0
              TEMPLATE_SIZE: 128
              UPDATE_INTERVALS: {LASOT: [200], GOT10K_TEST: [200], TRACKINGNET: [25], VOT20: [10], VOT20LT: [200]}
            """
        )
    )
    model, tracker = configs_from_official_yaml(path)
    assert model == ModelConfig(768, 8, 12, 4.0, 16, 128, 288, 72, False)
    assert model.bin_stride == 4.0
    shapes = expected_shapes(model)
    assert len(shapes) == 110
    assert sum(math.prod(s) for s in shapes.values()) == 58_245_336
    assert tracker.update_interval == 200 and tracker.update_intervals["trackingnet"] == 25


@pytest.mark.parametrize("vit", ["base_patch16", "large_patch16"])
def test_teacher_yaml_is_refused(tmp_path, vit):
    path = tmp_path / "teacher_mixvit.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            MODEL:
              VIT_TYPE: {vit}
              BACKBONE:
                DEPTH: 12
                PRETRAINED: False
                PRETRAINED_PATH: ./models/mae_pretrain_vit_base.pth
              HEAD_TYPE: CORNER_UP
              HIDDEN_DIM: {768 if vit.startswith("base") else 1024}
              PREDICT_MASK: False
            """
        )
    )
    with pytest.raises(ConfigError) as info:
        configs_from_official_yaml(path)
    msg = str(info.value)
    assert "HEAD_TYPE" in msg and "CORNER_UP" in msg and "teacher" in msg
    assert str(path) in msg


def test_missing_yaml_file(tmp_path):
    path = tmp_path / "nope" / "288_depth8_score.yaml"
    with pytest.raises(ConfigError) as info:
        configs_from_official_yaml(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "DATA:\n  SEARCH:\n    SIZE: 288\nTEST:\n  SEARCH_FACTOR: 4.5\n",  # no MODEL section
        "",  # empty file
        "- MODEL\n- DATA\n",  # a list, not a mapping
        "just a string\n",
    ],
    ids=["no-model", "empty", "list", "scalar"],
)
def test_yaml_without_model_section(tmp_path, text):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        configs_from_official_yaml(path)
    assert "MODEL" in str(info.value) and str(path) in str(info.value)


def test_malformed_yaml_and_unknown_vit_type(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL: [unclosed\n  VIT_TYPE: : :\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        configs_from_official_yaml(bad)
    huge = tmp_path / "huge.yaml"
    huge.write_text("MODEL:\n  VIT_TYPE: huge_patch14\n  HEAD_TYPE: MLP\n")
    with pytest.raises(ConfigError, match="huge_patch14"):
        configs_from_official_yaml(huge)


def test_yaml_with_test_sizes_differing_from_data_sizes(tmp_path):
    path = tmp_path / "mismatch.yaml"
    path.write_text(YAML_B.replace("  SEARCH_SIZE: 288", "  SEARCH_SIZE: 384"))
    with pytest.raises(ConfigError, match="384"):
        configs_from_official_yaml(path)


# -- architecture from shapes ---------------------------------------------------------------------
def _fixture_case(kind: str):
    cases = [c for c in discover() if c.kind == kind]
    assert cases, f"no {kind} fixture case"
    return cases[0]


@pytest.mark.parametrize("kind", ["student", "online"])
def test_infer_config_from_fixture_shapes(kind):
    case = _fixture_case(kind)
    shapes = {key: tuple(shape) for key, shape, _dtype in case.config["model"]["state_dict"]}
    dims = case.config["dims"]
    cfg = infer_config_from_shapes(shapes)
    assert cfg.embed_dim == dims["embed_dim"]
    assert cfg.depth == dims["depth"]
    assert cfg.mlp_ratio == float(dims["mlp_ratio"]) and cfg.mlp_hidden == dims["mlp_hidden"]
    assert cfg.patch_size == dims["patch_size"]
    assert cfg.template_size == dims["template_size"] and cfg.search_size == dims["search_size"]
    assert cfg.feat_sz == dims.get("FEAT_SZ", dims["feat_sz"])
    assert cfg.score_head == (kind == "online")
    # the head count is invisible in the shapes: 64-dim heads are assumed
    assert cfg.num_heads == max(1, cfg.embed_dim // 64)
    assert cfg.replace(num_heads=dims["num_heads"]) == case.model_config
    assert expected_shapes(cfg) == shapes


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_infer_config_from_preset_shapes_round_trips(name):
    model = PRESETS[name].model
    assert infer_config_from_shapes(expected_shapes(model)) == model
    with_motion = model.replace(motion_input=True)  # a frame-difference input shows in its own keys
    assert infer_config_from_shapes(expected_shapes(with_motion)) == with_motion


def test_infer_config_rejects_foreign_state_dicts():
    with pytest.raises(ConfigError, match="not a MixFormerV2"):
        infer_config_from_shapes({"fc.weight": (10, 10), "fc.bias": (10,)})
    shapes = expected_shapes(ModelConfig(**TINY))
    shapes["backbone.pos_embed_s"] = (1, 15, 64)
    with pytest.raises(ConfigError, match="square"):
        infer_config_from_shapes(shapes)
