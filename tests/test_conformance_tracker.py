"""End-to-end conformance with the official MixFormerOnline tracker (fixture E)."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures_official import Case, case_ids, cases_of, require
from mixformerv2.config import TrackerConfig
from mixformerv2.models import load_checkpoint
from mixformerv2.tracking.tracker import Tracker

pytestmark = pytest.mark.conformance

TRACKERS = cases_of("tracker")


def _run(case: Case, runtime: str = "fp32"):
    cfg = case.config
    model_case = Case((case.path / cfg["model_config_file"]).parent)
    model = load_checkpoint(case.path / cfg["checkpoint_file"], config=model_case.model_config)
    p = cfg["tracker_params"]
    assert p.get("online_size_effective", 1) == 1
    tracker = Tracker(
        model,
        TrackerConfig(
            template_factor=p["template_factor"],
            search_factor=p["search_factor"],
            update_interval=p.get("update_interval_effective", p["update_interval"]),
            max_score_decay=p.get("max_score_decay_effective", 1.0),
        ),
        runtime=runtime,
    )
    seq = np.load(case.path / "sequence.npz")
    frames = seq["frames"]
    tracker.init(frames[0], cfg["init_box_xywh"])
    return tracker, [tracker.track(f) for f in frames[1:]], np.load(case.path / "trace.npz")


@pytest.mark.parametrize("runtime", ["fp32", "onnx"])
@pytest.mark.parametrize("case", TRACKERS, ids=case_ids(TRACKERS))
def test_tracker_reproduces_official_sequence(case, runtime):
    case = require(case)
    _, results, trace = _run(case, runtime)
    n = len(results) + 1
    got = {
        "out_box": np.array([trace["out_box"][0]] + [r.box for r in results]),
        "score": np.array([r.score for r in results]),
        "score_logit": np.array([r.score_logit for r in results]),
        "pred_box_norm": np.array([r.pred_box_norm for r in results]),
        "search_crop": np.array([r.crop.as_array() for r in results]),
        "search_resize_factor": np.array([r.crop.resize_factor for r in results]),
    }
    assert got["out_box"].shape == (n, 4)
    np.testing.assert_allclose(got["out_box"], trace["out_box"], atol=0.01, rtol=0, err_msg="boxes (0.01 px)")
    np.testing.assert_allclose(got["score"], trace["score"][1:], atol=1e-5, rtol=0, err_msg="scores")
    np.testing.assert_allclose(got["score_logit"], trace["score_logit"][1:], atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["pred_box_norm"], trace["pred_box_norm"][1:], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(got["search_crop"], trace["search_crop"][1:])
    np.testing.assert_array_equal(got["search_resize_factor"], trace["search_resize_factor"][1:])
    # template-update decisions and which frame's crop is the online template
    np.testing.assert_array_equal([r.template_updated for r in results], trace["max_template_updated"][1:])
    np.testing.assert_array_equal([r.online_template_replaced for r in results], trace["online_template_replaced"][1:])
    np.testing.assert_array_equal([r.online_template_frame for r in results], trace["online_template_src_frame"][1:])
    updated_frames = [0] + [i + 1 for i, r in enumerate(results) if r.template_updated]
    np.testing.assert_array_equal(updated_frames, trace["template_patch_frames"])
    # per-frame boxes of the fixture's summary agree with the trace we compared against
    per_frame = np.array([f["box_xywh"] for f in case.config["per_frame"]])
    np.testing.assert_allclose(got["out_box"], per_frame, atol=0.01, rtol=0)


@pytest.mark.parametrize("case", TRACKERS, ids=case_ids(TRACKERS))
def test_batched_targets_equal_single_target_runs(case):
    """N targets in one batched step give each target's single-target result."""
    case = require(case)
    tracker, single, _ = _run(case)
    frames = np.load(case.path / "sequence.npz")["frames"]
    box = case.config["init_box_xywh"]
    other = [box[0] + 60, box[1] + 40, box[2] * 1.3, box[3] * 0.8]
    alone = Tracker(tracker.model, tracker.config)
    alone.init(frames[0], other)
    other_single = [alone.track(f) for f in frames[1:]]
    tracker.init_targets(frames[0], [box, other, box])
    for i, f in enumerate(frames[1:]):
        res = tracker.track_targets(f)
        for got, want in zip(res, (single[i], other_single[i], single[i])):
            np.testing.assert_allclose(got.box, want.box, atol=0.01, rtol=0)
            assert abs(got.score - want.score) <= 1e-5
            assert got.online_template_frame == want.online_template_frame
