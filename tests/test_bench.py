"""FLOP counting agrees with the official models' manifest; bench rows are sane."""

from __future__ import annotations

import json

import numpy as np

import pytest
import torch

from fixtures_official import fixtures_dir
from mixformerv2 import ModelConfig, build_model, get_preset
from mixformerv2.evaluation.bench import bench_model, count_flops, format_rows


@pytest.mark.conformance
@pytest.mark.parametrize("preset, official", [("mixformerv2-b", "MixFormerV2-B"), ("mixformerv2-s", "MixFormerV2-S")])
def test_full_forward_flops_equal_official_manifest(preset, official):
    manifest = json.loads((fixtures_dir() / "F_key_manifest.json").read_text())["models"][official]
    full, step, encode = count_flops(get_preset(preset).model)
    assert full == pytest.approx(manifest["flops"]["tracker_step_train_path"]["GFLOPs"], rel=1e-9)
    # our per-frame step does less than the official cached path (forward_test + heads)
    fast = manifest["flops"]["fast_path_not_used_by_official_tracker"]
    assert step < fast["per_frame_forward_test_plus_heads_GFLOPs"] < full
    assert encode < fast["set_online_GFLOPs"] * 1.0001


def test_bench_row_for_a_tiny_model():
    torch.manual_seed(0)
    cfg = ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
    row = bench_model("tiny", build_model(cfg).eval(), seconds=0.3)
    assert row.parameters == sum(p.numel() for p in build_model(cfg).state_dict().values())
    assert 0 < row.gflops_step < row.gflops_full_forward
    assert row.fps_step > 0 and row.fps_tracker > 0
    assert row.runtime == "fp32" and "| tiny | fp32 |" in format_rows([row])
    onnx = bench_model("tiny", build_model(cfg).eval(), seconds=0.3, runtime="onnx")
    assert onnx.runtime == "onnx" and onnx.fps_step > 0 and onnx.gflops_step == row.gflops_step


def test_bench_cli_measures_a_checkpoint(tmp_path, capsys):
    from mixformerv2 import save_checkpoint
    from mixformerv2.cli import main

    cfg = ModelConfig(embed_dim=32, depth=1, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
    path = save_checkpoint(build_model(cfg), tmp_path / "tiny.safetensors")
    assert main(["bench", "--presets", "--weights", str(path), "--seconds", "0.2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| tiny.safetensors |" in out and "GFLOPs cached step" in out


def test_free_running_auc_scores_the_tracker_from_a_shifted_first_box():
    """The noise-floor runs start from the first box moved right; the score is the AUC of the run."""
    from mixformerv2.evaluation.bench import free_running_auc

    class Still:  # reports its first box every frame
        def init(self, frame, box):
            self.box = tuple(float(v) for v in box)

        def update(self, frame):
            return True, self.box

    frames = [np.zeros((40, 40, 3), np.uint8)] * 5
    gt = np.array([[10.0, 10.0, 10.0, 10.0]] * 5)
    success = lambda iou: 100.0 * np.mean(np.linspace(0, 1, 21) < iou)  # pytracking: IoU > threshold
    assert free_running_auc(Still(), [(frames, gt, None)]) == pytest.approx(success(1.0), abs=0.01)  # IoU 1
    tracker = Still()
    shifted = free_running_auc(tracker, [(frames, gt, None)], init_shift=5.0)
    assert tracker.box == (15.0, 10.0, 10.0, 10.0)
    # IoU 50 / 150 on the 4 tracked frames (the first frame is scored as given, IoU 1)
    assert shifted == pytest.approx((success(1.0) + 4 * success(1 / 3)) / 5, abs=0.01)


def test_runtime_fidelity_of_fp32_itself_and_with_a_known_fp32_auc():
    from mixformerv2.data.synthetic import generate_sequence
    from mixformerv2.evaluation.bench import runtime_fidelity

    torch.manual_seed(0)
    model = build_model(ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, template_size=32,
                                    search_size=64, feat_sz=16)).eval()
    seq = generate_sequence((424242, 0))
    sequences = [(list(seq.frames[:6]), seq.boxes[:6], ~seq.absent[:6])]
    fid = runtime_fidelity(model, "fp32", sequences)
    assert fid.forced_iou == pytest.approx(1.0) and fid.auc_delta == 0.0  # fp32 follows itself exactly
    assert runtime_fidelity(model, "fp32", sequences, exact_aucs=fid.exact_aucs) == fid
    off = runtime_fidelity(model, "fp32", sequences, exact_aucs=[fid.auc_exact + 1])
    assert off.auc_delta == pytest.approx(-1.0) and not off.auc_meets_bar and not off.meets_bar
    auc_only = runtime_fidelity(model, "fp32", sequences, forced=False)  # the forced pass skipped
    assert np.isnan(auc_only.forced_iou) and auc_only.fast_aucs == fid.fast_aucs
    assert auc_only.auc_meets_bar and not auc_only.meets_bar  # the bar needs both halves measured


def test_runtime_fidelity_averages_the_free_runs_over_the_starts():
    """Each start is one free run from the first box moved right by that many pixels; the AUCs
    compared are the means over the starts."""
    from mixformerv2.data.synthetic import generate_sequence
    from mixformerv2.evaluation.bench import free_running_auc, runtime_fidelity
    from mixformerv2.tracking.tracker import Tracker

    torch.manual_seed(0)
    model = build_model(ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, template_size=32,
                                    search_size=64, feat_sz=16)).eval()
    seq = generate_sequence((424242, 1))
    sequences = [(list(seq.frames[:6]), seq.boxes[:6], ~seq.absent[:6])]
    starts = (0.0, 6.0)
    fid = runtime_fidelity(model, "bf16", sequences, starts=starts)
    exact = Tracker(model, runtime="fp32")
    runs = tuple(free_running_auc(exact, sequences, s) for s in starts)
    assert fid.exact_aucs == runs and runs[0] != runs[1]  # a 6-pixel start is a different run
    assert fid.auc_exact == pytest.approx(np.mean(runs))
    assert len(fid.fast_aucs) == 2 and fid.auc_fast == pytest.approx(np.mean(fid.fast_aucs))
    assert fid.auc_delta == pytest.approx(np.mean(fid.fast_aucs) - np.mean(runs))
    with pytest.raises(ValueError, match="2 fp32 AUCs for 1 starts"):
        runtime_fidelity(model, "fp32", sequences, exact_aucs=runs)
    with pytest.raises(ValueError, match="at least one start"):
        runtime_fidelity(model, "fp32", sequences, starts=())
