"""CUDA checks (run with `make test-gpu` on a machine with a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures_official import Case, case_ids, cases_of, require
from mixformerv2.models import load_checkpoint
from mixformerv2.tracking.tracker import Tracker

pytestmark = pytest.mark.gpu
ONLINE = cases_of("online")
TRACKERS = cases_of("tracker")


@pytest.fixture(autouse=True)
def _needs_cuda():
    assert torch.cuda.is_available(), "gpu tests need a CUDA device"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


@pytest.mark.parametrize("case", ONLINE, ids=case_ids(ONLINE))
@torch.no_grad()
def test_cuda_matches_cpu(case):
    case = require(case)
    cpu = load_checkpoint(case.path / "weights.safetensors", config=case.model_config)
    gpu = load_checkpoint(case.path / "weights.safetensors", config=case.model_config, device="cuda")
    t, ot, s = (case.io[k] for k in ("in.template", "in.online_template", "in.search"))
    ref = cpu(t, ot, s)
    full = gpu(t.cuda(), ot.cuda(), s.cuda())
    step = gpu.step(s.cuda(), gpu.encode_templates(t.cuda(), ot.cuda()))
    for out in (full, step):
        for key in ("pred_boxes", "prob_l", "prob_r", "prob_t", "prob_b", "pred_scores"):
            np.testing.assert_allclose(out[key].cpu().numpy(), ref[key].numpy(), atol=1e-5, rtol=0, err_msg=key)


@pytest.mark.parametrize("case", TRACKERS, ids=case_ids(TRACKERS))
def test_cuda_tracker_reproduces_official_sequence(case):
    case = require(case)
    cfg = case.config
    model_case = Case((case.path / cfg["model_config_file"]).parent)
    model = load_checkpoint(case.path / cfg["checkpoint_file"], config=model_case.model_config, device="cuda")
    from mixformerv2.config import TrackerConfig

    p = cfg["tracker_params"]
    tracker = Tracker(model, TrackerConfig(template_factor=p["template_factor"], search_factor=p["search_factor"],
                                           update_interval=p["update_interval"]), device="cuda")
    frames = np.load(case.path / "sequence.npz")["frames"]
    trace = np.load(case.path / "trace.npz")
    tracker.init(frames[0], cfg["init_box_xywh"])
    boxes = [trace["out_box"][0]] + [tracker.track(f).box for f in frames[1:]]
    np.testing.assert_allclose(np.array(boxes), trace["out_box"], atol=0.01, rtol=0)
