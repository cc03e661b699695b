"""Third-party toolkits running our tracker: got10k (``ExperimentOTB``) and the VOT toolkit
(TraX server, ``vot evaluate`` + ``vot analysis`` on a tiny local workspace).

These need ``got10k``, ``vot-trax`` and ``vot-toolkit`` installed; a missing one fails its
tests with the pip command to run (nothing is skipped).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from mixformerv2 import ModelConfig, Tracker, build_model, save_checkpoint
from mixformerv2.errors import ConfigError, InputError, MixFormerError
from mixformerv2.geometry import normalize_frame
from mixformerv2.tracking.video import read_image

TINY = ModelConfig(embed_dim=32, depth=1, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
VOT_MODULE = "mixformerv2.evaluation.integrations.vot"


def _require(module: str, pip_name: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # fail, never skip: the integration is part of the deliverable
        pytest.fail(f"`{module}` cannot be imported ({exc}); install it: pip install {pip_name}", pytrace=False)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(build_model(TINY), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def _clip(n: int, seed: int, h: int = 72, w: int = 96):
    """Noise frames with a red block moving right/down; returns (RGB frames, xywh boxes)."""
    rng = np.random.default_rng(seed)
    frames, boxes = [], []
    for i in range(n):
        frame = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        x, y = 20 + 3 * i, 15 + 2 * i
        frame[y : y + 18, x : x + 24] = (210, 40, 40)
        frames.append(frame)
        boxes.append((x, y, 24, 18))
    return frames, boxes


def _reference(weights: Path, frames, box) -> np.ndarray:
    """Our Tracker run directly: (N, 4) boxes with the init box first."""
    tracker = Tracker.from_checkpoint(weights)
    tracker.init(frames[0], box)
    out = [list(map(float, box))] + [list(tracker.track(f).box) for f in frames[1:]]
    return np.asarray(out, dtype=np.float64)


# -- got10k -------------------------------------------------------------------------------------------
def test_frame_from_image_converts_every_pil_mode():
    from mixformerv2.evaluation.integrations import frame_from_image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    gray = rng.integers(0, 255, (6, 8), dtype=np.uint8)
    rgba = np.dstack([rgb, rng.integers(0, 255, (6, 8), dtype=np.uint8)])
    deep = rng.integers(0, 65535, (6, 8), dtype=np.uint16)
    for image, expected in [
        (Image.fromarray(rgb), rgb),
        (Image.fromarray(gray), np.repeat(gray[..., None], 3, axis=2)),  # the OTB grayscale case
        (Image.fromarray(gray).convert("LA"), np.repeat(gray[..., None], 3, axis=2)),
        (Image.fromarray(rgba), rgb),  # alpha dropped, not composited
        (Image.fromarray(deep), normalize_frame(deep)),  # 'I;16': scaled, not clipped
        (Image.fromarray(deep.astype(np.int32)), normalize_frame(deep)),  # 'I' with 16-bit values
        (Image.fromarray(rgb).convert("P"), np.asarray(Image.fromarray(rgb).convert("P").convert("RGB"))),
        (gray, np.repeat(gray[..., None], 3, axis=2)),  # numpy frames too
    ]:
        out = frame_from_image(image)
        assert out.dtype == np.uint8 and out.shape == (6, 8, 3) and out.flags.c_contiguous
        np.testing.assert_array_equal(out, expected, err_msg=getattr(image, "mode", "ndarray"))
    assert Image.fromarray(deep).mode == "I;16"
    # got10k's own Tracker.track does image.convert('RGB'), which saturates 16-bit frames:
    assert (np.asarray(Image.fromarray(deep).convert("RGB")) == 255).mean() > 0.9
    with pytest.raises(InputError, match="not supported"):
        frame_from_image(Image.fromarray(deep.astype(np.float32)))  # 'F'
    with pytest.raises(InputError, match="only 8- and 16-bit"):
        frame_from_image(Image.fromarray(np.full((2, 2), 70000, dtype=np.int32)))
    with pytest.raises(InputError, match="PIL image or a numpy array"):
        frame_from_image([[1, 2], [3, 4]])


def _write_otb_sequence(root: Path, name: str, frames, boxes, grayscale: bool, delimiter: str) -> None:
    img_dir = root / name / "img"
    img_dir.mkdir(parents=True)
    for i, frame in enumerate(frames):
        image = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if grayscale else frame)
        image.save(img_dir / f"{i + 1:04d}.jpg", quality=95)
    lines = [delimiter.join(str(v) for v in box) for box in boxes]
    (root / name / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")


def test_got10k_experiment_otb_runs_our_tracker(weights, tmp_path, monkeypatch):
    _require("got10k", "got10k")
    import matplotlib

    matplotlib.use("Agg")
    from got10k.datasets import OTB
    from got10k.experiments import ExperimentOTB
    from got10k.trackers import Tracker as GOT10kTracker

    from mixformerv2.evaluation.integrations import MixFormerV2GOT10k

    # An OTB-layout tree with two real OTB names: Car4 is a grayscale sequence in OTB, Deer color.
    root = tmp_path / "OTB"
    clips = {"Car4": _clip(6, seed=1), "Deer": _clip(5, seed=2)}
    _write_otb_sequence(root, "Car4", *clips["Car4"], grayscale=True, delimiter=",")
    _write_otb_sequence(root, "Deer", *clips["Deer"], grayscale=False, delimiter="\t")
    monkeypatch.setattr(OTB, "_download", lambda self, root_dir, version: None)  # offline: the other 98 are absent

    tracker = MixFormerV2GOT10k(weights=weights, name="MixFormerV2-tiny")
    assert isinstance(tracker, GOT10kTracker) and tracker.name == "MixFormerV2-tiny" and tracker.is_deterministic
    experiment = ExperimentOTB(str(root), version=2015, result_dir=str(tmp_path / "results"), report_dir=str(tmp_path / "reports"))
    assert experiment.dataset.seq_names == ["Car4", "Deer"]
    experiment.run(tracker)
    performance = experiment.report([tracker.name])

    for name, (clip_frames, gt) in clips.items():
        img_files, anno = experiment.dataset[name]
        first = Image.open(img_files[0])
        assert first.mode == ("L" if name == "Car4" else "RGB")  # the grayscale gotcha is exercised
        decoded = [normalize_frame(np.asarray(Image.open(f))) for f in img_files]  # same decoder (PIL)
        expected = _reference(weights, decoded, anno[0])
        # got10k's experiment stores boxes with 3 decimals
        recorded = np.loadtxt(tmp_path / "results" / "OTB2015" / tracker.name / f"{name}.txt", delimiter=",")
        np.testing.assert_allclose(recorded, expected, rtol=0, atol=6e-4)
        # the Tracker-base API got10k's experiments call: exactly our Tracker's boxes
        boxes, times = tracker.track(img_files, anno[0])
        np.testing.assert_array_equal(boxes, expected)
        assert times.shape == (len(img_files),) and (times >= 0).all()
        assert not np.allclose(expected[1:], expected[0])  # the tracker did move the box

    overall = performance[tracker.name]["overall"]
    assert 0.0 <= overall["success_score"] <= 1.0 and 0.0 <= overall["precision_score"] <= 1.0
    report = tmp_path / "reports" / "OTB2015" / tracker.name
    assert (report / "performance.json").is_file() and (report / "success_plots.png").is_file()


def test_got10k_adapter_handles_16bit_and_direct_calls(weights, tmp_path):
    _require("got10k", "got10k")
    from mixformerv2.evaluation.integrations import MixFormerV2GOT10k

    frames, boxes = _clip(4, seed=3)
    deep = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257 for f in frames]  # 16-bit gray
    files = []
    for i, frame in enumerate(deep):
        path = tmp_path / f"{i:04d}.png"
        Image.fromarray(frame).save(path)
        files.append(str(path))
    assert Image.open(files[0]).mode == "I;16"
    expected = _reference(weights, [normalize_frame(f) for f in deep], boxes[0])

    adapter = MixFormerV2GOT10k(weights=weights)
    got, _ = adapter.track(files, np.asarray(boxes[0], dtype=np.float64))
    np.testing.assert_array_equal(got, expected)

    # init / update called directly with PIL images of other modes, as other got10k code does
    adapter.init(Image.fromarray(frames[0]).convert("RGBA"), boxes[0])
    out = adapter.update(Image.fromarray(frames[1]))
    assert isinstance(out, np.ndarray) and out.shape == (4,) and out.dtype == np.float64
    np.testing.assert_array_equal(out, _reference(weights, frames[:2], boxes[0])[1])
    assert 0.0 <= adapter.last_score <= 1.0

    # a ready Tracker can be wrapped; mixing it with loading arguments is refused
    wrapped = MixFormerV2GOT10k(tracker=Tracker.from_checkpoint(weights), name="x")
    np.testing.assert_array_equal(wrapped.track(files, boxes[0])[0], expected)
    with pytest.raises(MixFormerError, match="either a ready"):
        MixFormerV2GOT10k(weights=weights, tracker=wrapped.tracker)


def test_got10k_adapter_default_model_and_missing_package(monkeypatch):
    _require("got10k", "got10k")
    from mixformerv2.evaluation.integrations import MixFormerV2GOT10k, got10k_adapter

    tracker = MixFormerV2GOT10k()  # the model shipped with the package
    assert tracker.name == "MixFormerV2"
    frames, boxes = _clip(2, seed=4)
    tracker.init(Image.fromarray(frames[0]), boxes[0])
    assert tracker.update(Image.fromarray(frames[1])).shape == (4,)

    monkeypatch.setattr(got10k_adapter, "_CLASS", None)
    for name in [m for m in sys.modules if m == "got10k" or m.startswith("got10k.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "got10k", None)  # import got10k -> ImportError
    with pytest.raises(MixFormerError, match="pip install got10k"):
        got10k_adapter.MixFormerV2GOT10k


# -- VOT: TraX server --------------------------------------------------------------------------------
def _subprocess_env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def test_trax_server_matches_tracker(weights, tmp_path):
    _require("trax", "vot-trax")
    from trax.client import Client
    from trax.image import FileImage
    from trax.region import Polygon, Rectangle

    frames, boxes = _clip(5, seed=5)
    files = _write_frames(tmp_path, frames)
    second = (50.0, 40.0, 20.0, 16.0)  # a polygon target: tracked as its bounding box
    polygon = [(50.0, 40.0), (70.0, 40.0), (70.0, 56.0), (50.0, 56.0)]

    reference = Tracker.from_checkpoint(weights)
    decoded = [read_image(f) for f in files]
    reference.init_targets(decoded[0], [boxes[0], second])
    expected = [reference.track_targets(f) for f in decoded[1:]]

    env = dict(_subprocess_env(), TRAX="1")
    command = [sys.executable, "-m", VOT_MODULE, "--weights", str(weights), "--multiobject"]
    log: list[str] = []
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, bufsize=0)
    try:
        client = Client(stream=(process.stdin.fileno(), process.stdout.fileno()), timeout=60, log=log.append)
        assert client.tracker_name == "MixFormerV2"
        assert "rectangle" in client.region_formats and "path" in client.image_formats
        assert client.channels == ["color"] and client.get("multiobject") is True
        init_objects = [(Rectangle.create(*boxes[0]), {}), (Polygon.create(polygon), {})]
        state, _ = client.initialize({"color": FileImage.create(files[0])}, init_objects, {})
        assert [r.bounds() for r, _ in state] == [tuple(map(float, boxes[0])), second]
        for path, results in zip(files[1:], expected):
            state, _ = client.frame({"color": FileImage.create(path)}, {}, [])
            assert len(state) == 2  # one rectangle per target per frame
            for (region, properties), result in zip(state, results):
                assert region.type == "rectangle"
                np.testing.assert_allclose(region.bounds(), result.box, rtol=0, atol=1e-3)  # float32, 4 decimals
                assert float(properties["confidence"]) == pytest.approx(result.score, abs=1e-6)
        client.quit()
        assert process.wait(timeout=30) == 0, "".join(log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- VOT: trackers.ini and the python protocol ----------------------------------------------------------
def test_write_trackers_ini(weights, tmp_path):
    from mixformerv2.evaluation.integrations import write_trackers_ini

    src = str(Path(__file__).resolve().parents[1] / "src")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "trackers.ini").write_text("[Other]\nprotocol = trax\ncommand = other_tracker\n")
    path = write_trackers_ini(ws, "MixFormerV2", weights=weights, timeout=120)
    write_trackers_ini(ws, "MixFormerV2", weights=weights, device="cpu", dataset="vot20")  # replaces the entry
    write_trackers_ini(ws / "trackers.ini", "MF-py", weights=weights, protocol="python")
    write_trackers_ini(ws, "MF_trax", protocol="trax", multiobject=True)  # shipped model
    text = path.read_text()
    assert path == ws / "trackers.ini" and text.count("[MixFormerV2]") == 1 and "[Other]" in text
    assert "timeout" not in text.split("[MixFormerV2]")[1].split("[")[0]

    vot_tracker = _require("vot.tracker", "vot-toolkit")
    registry = vot_tracker.Registry([str(ws)], root=str(ws))
    assert sorted(registry.identifiers()) == ["MF-py", "MF_trax", "MixFormerV2", "Other"]
    entry = registry["MixFormerV2"]
    assert entry.protocol == "traxpython"
    described = entry.describe()
    assert described["env"] == {"MIXFORMERV2_WEIGHTS": str(weights.resolve()), "MIXFORMERV2_DEVICE": "cpu", "MIXFORMERV2_DATASET": "vot20"}
    runtime = entry.runtime()  # builds the command line; starts nothing yet
    assert runtime._command == f"{sys.executable} -m {VOT_MODULE}"
    assert runtime._envvars["PYTHONPATH"] == src and runtime._envvars["TRAX"] == "1"
    assert registry["MF-py"].describe()["arguments"] == {"weights": str(weights.resolve()), "device": "cpu"}
    trax_command = registry["MF_trax"].runtime()._command
    assert trax_command.endswith(f"-m {VOT_MODULE} --device cpu --multiobject") and "--weights" not in trax_command

    with pytest.raises(ConfigError, match="identifier"):
        write_trackers_ini(ws, "bad name", weights=weights)
    with pytest.raises(ConfigError, match="protocol"):
        write_trackers_ini(ws, "x", weights=weights, protocol="matlab")
    with pytest.raises(ConfigError, match="no such checkpoint"):
        write_trackers_ini(ws, "x", weights=tmp_path / "missing.safetensors")
    with pytest.raises(ConfigError, match="no such folder"):
        write_trackers_ini(tmp_path / "nowhere", "x")


def _write_frames(folder, frames) -> list[str]:
    """RGB frames as 00000001.png ... in ``folder`` (the image files a VOT stack hands over)."""
    files = []
    for i, frame in enumerate(frames):
        path = folder / f"{i + 1:08d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        files.append(str(path))
    return files


def test_vot_python_protocol_tracker(weights, tmp_path):
    from mixformerv2.evaluation.integrations import VOTPythonTracker

    frames, boxes = _clip(3, seed=6)
    files = _write_frames(tmp_path, frames)
    expected = _reference(weights, [read_image(f) for f in files], boxes[0])
    tracker = VOTPythonTracker(weights=str(weights))
    region, props = tracker.init(files[0], (tuple(float(v) for v in boxes[0]), {}), {})
    assert region == tuple(map(float, boxes[0])) and props == {"confidence": 1.0}
    for path, box in zip(files[1:], expected[1:]):
        region, props = tracker.update(path, [], {})
        assert isinstance(region, tuple) and len(region) == 4
        np.testing.assert_array_equal(region, box)
        assert 0.0 <= props["confidence"] <= 1.0
    # polygons (lists of points) and masks are tracked as their bounding boxes
    x, y, w, h = boxes[0]
    tracker.init({"color": frames[0]}, ([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], {}))
    np.testing.assert_array_equal(tracker.update(files[1], [])[0], expected[1])
    mask = np.zeros(frames[0].shape[:2], dtype=np.uint8)
    mask[y : y + h, x : x + w] = 1
    assert tracker.init(files[0], mask.tolist())[0] == tuple(map(float, boxes[0]))
    with pytest.raises(InputError, match="not supported"):
        tracker.update(files[1], [((0, 0, 5, 5), {})])


# -- VOT: the toolkit end to end ---------------------------------------------------------------------
def _write_vot_sequence(root: Path, name: str, frames, boxes, grayscale: bool) -> None:
    color = root / name / "color"
    color.mkdir(parents=True)
    for i, frame in enumerate(frames):
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if grayscale else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(color / f"{i + 1:08d}.png"), image)
    (root / name / "groundtruth.txt").write_text("".join(f"{x},{y},{w},{h}\n" for x, y, w, h in boxes))
    (root / name / "sequence").write_text("channels.color=color/%08d.png\nfps=30\n")


STACK = """\
title: MixFormerV2 integration test stack
experiments:
  baseline:
    type: unsupervised
    repetitions: 1
    analyses:
      - type: average_accuracy
        name: accuracy
        burnin: 0
      - type: average_success_plot
        name: success
"""


def _vot_command() -> list[str]:
    script = Path(sys.executable).with_name("vot")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "vot"]


@pytest.mark.slow
def test_vot_toolkit_evaluate_and_analysis(weights, tmp_path):
    _require("trax", "vot-trax")
    _require("vot.workspace", "vot-toolkit")
    from vot.region import Rectangle as VOTRectangle
    from vot.region.io import read_trajectory

    from mixformerv2.evaluation.integrations import write_trackers_ini

    ws = tmp_path / "workspace"
    sequences = ws / "sequences"
    clips = {"colorful": (_clip(5, seed=7), False), "grayish": (_clip(4, seed=8), True)}
    for name, ((frames, boxes), gray) in clips.items():
        _write_vot_sequence(sequences, name, frames, boxes, gray)
    (sequences / "list.txt").write_text("".join(f"{name}\n" for name in clips))
    (ws / "stack.yaml").write_text(STACK)
    (ws / "config.yaml").write_text("registry:\n- ./trackers.ini\nstack: stack.yaml\n")
    write_trackers_ini(ws, "MixFormerV2", weights=weights, timeout=120)  # traxpython
    write_trackers_ini(ws, "MixFormerV2py", weights=weights, protocol="python", timeout=120)

    env = _subprocess_env()
    trackers = ["MixFormerV2", "MixFormerV2py"]
    evaluate = subprocess.run(
        _vot_command() + ["evaluate", "--workspace", str(ws)] + trackers,
        cwd=ws, env=env, capture_output=True, text=True, timeout=300,
    )
    output = evaluate.stdout + evaluate.stderr
    assert evaluate.returncode == 0 and "Evaluation concluded" in output, output
    analysis = subprocess.run(
        _vot_command() + ["analysis", "--workspace", str(ws), "--name", "tiny", "--format", "json"] + trackers,
        cwd=ws, env=env, capture_output=True, text=True, timeout=300,
    )
    output = analysis.stdout + analysis.stderr
    assert analysis.returncode == 0 and "Analysis successful" in output, output

    for tracker in trackers:
        for name, ((_, boxes), _) in clips.items():
            folder = ws / "results" / tracker / "baseline" / name
            trajectory = read_trajectory(str(folder / f"{name}_001.bin"))
            assert len(trajectory) == len(boxes)
            frames = [read_image(p) for p in sorted((sequences / name / "color").iterdir())]
            expected = _reference(weights, frames, boxes[0])
            got = [(r.x, r.y, r.width, r.height) for r in trajectory[1:]]  # frame 0: the initialization mark
            assert all(isinstance(r, VOTRectangle) for r in trajectory[1:])
            np.testing.assert_allclose(got, expected[1:], rtol=0, atol=1e-3)
            confidence = (folder / f"{name}_001_confidence.value").read_text().split()
            assert len(confidence) == len(boxes) and all(0.0 <= float(c) <= 1.0 for c in confidence)

    report = json.loads((ws / "analysis" / "tiny.json").read_text())
    assert sorted(report["trackers"]) == trackers
    assert report["trackers"]["MixFormerV2"]["protocol"] == "traxpython"
    assert sorted(report["sequences"]) == sorted(clips)
    accuracy = report["results"]["baseline"]["results"][0]  # first analysis, one entry per tracker
    assert len(accuracy) == len(trackers)
    assert all(0.0 <= a[0] <= 1.0 for a in accuracy)
    assert accuracy[0][0] == pytest.approx(accuracy[1][0], abs=1e-4)  # both protocols, same tracker
