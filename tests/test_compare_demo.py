"""Side-by-side tracker comparison, OpenCV baselines, the default model and the demo."""

from __future__ import annotations

import numpy as np
import pytest

from mixformerv2 import InputError
from mixformerv2.cli import main
from mixformerv2.demo import DEFAULT_MODEL_POLICY, default_weights, model_label
from mixformerv2.data.synthetic import SyntheticConfig, generate_sequence
from mixformerv2.evaluation.bench import scenario_groups
from mixformerv2.evaluation.compare import OpenCVTracker, compare_trackers, format_breakdown, format_table, run_tracker
from mixformerv2.models import load_checkpoint
from mixformerv2.tracking.tracker import Tracker


def _moving_square(n=12, h=120, w=160):
    """A bright textured square moving right on a dark background; returns frames and GT."""
    rng = np.random.default_rng(0)
    patch = rng.integers(150, 255, (24, 24, 3), dtype=np.uint8)
    frames, gt = [], []
    for i in range(n):
        f = np.full((h, w, 3), 20, np.uint8)
        x, y = 20 + 5 * i, 40 + i
        f[y : y + 24, x : x + 24] = patch
        frames.append(f)
        gt.append((x, y, 24, 24))
    return frames, np.array(gt, dtype=np.float64)


class Oracle:
    """Returns the ground truth: the comparison must score it perfectly."""

    def __init__(self, gt):
        self.gt, self.i = gt, 0

    def init(self, frame, box):
        self.i = 0

    def update(self, frame):
        self.i += 1
        return True, tuple(self.gt[self.i])


class Frozen:
    def init(self, frame, box):
        self.box = tuple(box)

    def update(self, frame):
        return True, self.box


def test_compare_scores_oracle_perfect_and_frozen_worse():
    frames, gt = _moving_square()
    scored = compare_trackers({"oracle": lambda: Oracle(gt), "frozen": Frozen}, [(frames, gt, None)])
    oracle, frozen = scored
    assert oracle.auc == pytest.approx(100.0 * 20 / 21, abs=1e-3)  # IoU 1 passes every threshold but 1.0
    assert frozen.auc < oracle.auc - 30
    np.testing.assert_array_equal(oracle.runs[0].boxes, gt)
    assert "| oracle |" in format_table(scored)


def test_breakdown_scores_each_subset_of_sequences():
    """format_breakdown: per named subset, each tracker's AUC over just those sequences (a frozen box
    is perfect on a still target, poor on a moving one); empty subsets are left out."""
    moving, gt = _moving_square()
    still_gt = np.repeat(gt[:1], len(gt), axis=0)
    still = [moving[0]] * len(moving)
    scored = compare_trackers({"oracle": lambda: Oracle(gt), "frozen": Frozen}, [(moving, gt, None), (still, still_gt, None)])
    table = format_breakdown(scored, {"all": [True, True], "moving": [True, False], "still": [False, True], "none": [False, False]})
    rows = {line.split(" | ")[0].lstrip("| "): line.rstrip(" |").split(" | ")[1:] for line in table.splitlines()[2:]}
    assert set(rows) == {"all", "moving", "still"}
    assert rows["all"] == ["2", f"{scored[0].auc:.1f}", f"{scored[1].auc:.1f}"]
    assert float(rows["still"][2]) == pytest.approx(100.0 * 20 / 21, abs=0.05)
    assert float(rows["moving"][2]) < float(rows["still"][2]) - 30
    assert table.splitlines()[0] == "| sequences | n | oracle | frozen |"


def test_scenario_groups_read_the_generators_scenarios():
    cfg = SyntheticConfig(width=96, height=72, num_frames=(4, 4), distractor_prob=1.0, camera_motion_prob=0.0)
    infos = [generate_sequence((5, i), cfg).info for i in range(3)]
    infos.append({**infos[0], "flags": {}, "size": 50.0, "speed": 10.0})
    groups = scenario_groups(infos)
    assert groups["moving look-alike distractors"].tolist() == [True, True, True, False]
    assert (groups["no distractors"] == ~groups["moving look-alike distractors"]).all()
    assert not groups["camera motion"].any() and groups["all"].all()
    assert groups["target above 35 px"][3] and groups["fast (over 0.1 sizes / frame)"][3]
    sizes = np.array([i["size"] for i in infos])
    np.testing.assert_array_equal(groups["target under 20 px"], sizes < 20)


@pytest.mark.parametrize("name", ["csrt", "kcf"])
def test_opencv_baselines_follow_an_easy_target(name):
    frames, gt = _moving_square()
    run = run_tracker(OpenCVTracker(name), frames, gt[0])
    assert run.boxes.shape == (12, 4) and np.isfinite(run.fps)
    assert np.abs(run.boxes[-1, :2] - gt[-1, :2]).max() < 8


def test_unknown_baseline_is_refused():
    with pytest.raises(InputError, match="unknown OpenCV tracker"):
        OpenCVTracker("boosting-2000")


def test_default_model_ships_and_loads():
    model = load_checkpoint(default_weights())
    assert model.config.patch_size == 8 and model.config.score_head
    assert model.tracker_defaults == DEFAULT_MODEL_POLICY  # the policy its model card measures
    config = Tracker(model).config
    assert {name: getattr(config, name) for name in DEFAULT_MODEL_POLICY} == DEFAULT_MODEL_POLICY
    assert default_weights().stat().st_size <= 10 * 2**20


def test_demo_names_the_model_it_tracks_with():
    assert model_label(None) == "MixFormerV2 (default model)"
    assert model_label("runs/x/model.safetensors") == "MixFormerV2 (model.safetensors)"


@pytest.mark.slow
def test_demo_writes_outputs_and_compares(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--baselines", "kcf"]) == 0
    out = capsys.readouterr().out
    assert "MixFormerV2 (default model)" in out and "OpenCV KCF" in out
    boxes = np.loadtxt(tmp_path / "boxes.txt", delimiter=",")
    gt = np.loadtxt(tmp_path / "groundtruth.txt", delimiter=",")
    assert boxes.shape == gt.shape and boxes.shape[0] > 100
    np.testing.assert_allclose(boxes[0], gt[0], atol=1e-3)
    assert (tmp_path / "tracked.mp4").stat().st_size > 10_000


def test_track_without_weights_uses_default_model(tmp_path, capsys):
    import cv2

    frames, gt = _moving_square(4)
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i}.png"), f)
    out = tmp_path / "b.txt"
    assert main(["track", str(tmp_path), "--box", "20,40,24,24", "--save-boxes", str(out), "--quiet"]) == 0
    assert "default model" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 4
