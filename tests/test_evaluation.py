"""Benchmark runner, result folders, reports and server packages on tiny datasets in real layouts."""

from __future__ import annotations

import struct
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mixformerv2 import ModelConfig, build_model, save_checkpoint
from mixformerv2.cli import main
from mixformerv2.evaluation.metrics import aggregate, lasot_target_visible, sequence_metrics
from mixformerv2.evaluation.report import evaluate, merge_runs
from mixformerv2.evaluation.results import (
    ResultError,
    ResultFolder,
    ResultWarning,
    read_result_boxes,
    resolve_benchmark,
)
from mixformerv2.evaluation.runner import run_benchmark
from mixformerv2.evaluation.submission import pack_got10k, pack_trackingnet
from mixformerv2.errors import InputError

TINY = ModelConfig(embed_dim=32, depth=1, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
H, W = 48, 64


# -- tiny datasets in their real on-disk layouts ----------------------------------------------------
def _frames(folder: Path, n: int, names, seed: int) -> list[list[float]]:
    """n frames with a red rectangle moving right/down; returns the GT boxes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    boxes = []
    for i in range(n):
        img = rng.integers(0, 120, (H, W, 3), dtype=np.uint8)
        x, y = 8 + 2 * i, 6 + i
        img[y : y + 14, x : x + 18] = (0, 0, 255)
        assert cv2.imwrite(str(folder / names(i)), img)
        boxes.append([float(x), float(y), 18.0, 14.0])
    return boxes


def _lines(boxes, sep=",", fmt="{:g}") -> str:
    return "".join(sep.join(fmt.format(v) for v in b) + "\n" for b in boxes)


def make_got10k(split_dir: Path, split: str, lengths=(6, 5), test: bool = False) -> dict[str, list]:
    names, gts = [], {}
    for s, n in enumerate(lengths):
        name = f"GOT-10k_{split.capitalize()}_{s + 1:06d}"
        folder = split_dir / name
        boxes = _frames(folder, n, lambda i: f"{i + 1:08d}.jpg", seed=s)
        (folder / "groundtruth.txt").write_text(_lines(boxes[:1] if test else boxes))
        if not test:
            (folder / "absence.label").write_text("0\n" * n)
            (folder / "cover.label").write_text("8\n" * (n - 1) + "0\n")
        (folder / "meta_info.ini").write_text(f"[METAINFO]\nobject_class: box\nresolution: ({W}, {H})\n")
        names.append(name)
        gts[name] = boxes
    (split_dir / "list.txt").write_text("\n".join(names) + "\n")
    return gts


def make_lasot(root: Path) -> dict[str, tuple]:
    out = {}
    for cls, k, n, occ, oov in (("cat", 1, 6, [0, 0, 1, 0, 0, 0], [0] * 6), ("dog", 7, 5, [0] * 5, [0, 0, 0, 1, 1])):
        name = f"{cls}-{k}"
        folder = root / cls / name
        boxes = _frames(folder / "img", n, lambda i: f"{i + 1:08d}.jpg", seed=k)
        boxes[1] = [0.0, 0.0, 0.0, 0.0] if cls == "cat" else boxes[1]  # an invalid GT frame
        (folder / "groundtruth.txt").write_text(_lines(boxes))
        (folder / "full_occlusion.txt").write_text(",".join(map(str, occ)) + "\n")
        (folder / "out_of_view.txt").write_text(",".join(map(str, oov)) + "\n")
        out[name] = (np.array(boxes), np.array(occ), np.array(oov))
    return out


def make_trackingnet_test(root: Path, lengths=(4, 3)) -> list[str]:
    names = []
    for s, n in enumerate(lengths):
        vid = f"video_{s}"
        boxes = _frames(root / "TEST" / "frames" / vid, n, lambda i: f"{i}.jpg", seed=10 + s)
        (root / "TEST" / "anno").mkdir(parents=True, exist_ok=True)
        (root / "TEST" / "anno" / f"{vid}.txt").write_text(_lines(boxes[:1]))
        names.append(vid)
    return names


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(build_model(TINY), tmp_path_factory.mktemp("w") / "tiny.safetensors")


@pytest.fixture()
def got_val(tmp_path) -> tuple[Path, dict]:
    gts = make_got10k(tmp_path / "got10k" / "val", "val")
    return tmp_path / "got10k" / "val", gts


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _perturbed(boxes, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = np.array(boxes, dtype=np.float64)
    b[:, :2] += rng.uniform(-4, 4, (len(b), 2))
    b[:, 2:] *= rng.uniform(0.8, 1.2, (len(b), 2))
    return np.round(b, 4)


# -- runner ------------------------------------------------------------------------------------------
def test_eval_writes_one_line_per_frame_and_resumes(capsys, weights, got_val, tmp_path):
    root, gts = got_val
    results = tmp_path / "results"
    code, out, err = run(capsys, "eval", "--dataset", "got10k", "--root", root, "--results", results,
                         "--weights", weights, "--name", "tiny", "--quiet")
    assert code == 0, err
    folder = results / "tiny" / "got10k_val"
    assert "2 sequence(s) tracked" in out and str(folder) in out
    for name, gt in gts.items():
        lines = (folder / f"{name}.txt").read_text().splitlines()
        assert len(lines) == len(gt)
        assert all(len(line.split(",")) == 4 and "." in line for line in lines)
        assert read_result_boxes(folder / f"{name}.txt")[0].tolist() == gt[0]  # frame 0 = init box
        times = (folder / f"{name}_time.txt").read_text().splitlines()
        assert len(times) == len(gt) and all(float(t) >= 0 for t in times)
    assert (folder / "run.json").is_file()

    # rerun: finished sequences are skipped (files untouched); a killed run's temp file is replaced
    first, second = sorted(gts)
    stamp = (folder / f"{first}.txt").stat().st_mtime_ns
    (folder / f"{second}.txt").unlink()
    stale = folder / f".{second}.txt.k1ll3d.tmp"
    stale.write_text("1,2,3\n4,5")  # half-written by a killed run
    time.sleep(0.01)
    code, out, err = run(capsys, "eval", "--dataset", "got10k_val", "--root", root.parent, "--results", results,
                         "--weights", weights, "--name", "tiny", "--quiet")
    assert code == 0, err
    assert "1 sequence(s) tracked" in out and "1 already done (skipped)" in out
    assert (folder / f"{first}.txt").stat().st_mtime_ns == stamp
    assert not stale.exists()
    assert len((folder / f"{second}.txt").read_text().splitlines()) == len(gts[second])
    assert not list(folder.glob(".*.tmp"))

    # a result with the wrong number of lines is re-run, with a warning
    (folder / f"{first}.txt").write_text("1,2,3,4\n")
    code, out, err = run(capsys, "eval", "--dataset", "got10k_val", "--root", root, "--results", results,
                         "--weights", weights, "--name", "tiny", "--quiet")
    assert code == 0 and "1 sequence(s) tracked" in out
    assert f"has 1 lines for {len(gts[first])} frames" in err

    # other settings into the same folder are refused; --integer-boxes truncates like the official writer
    code, out, err = run(capsys, "eval", "--dataset", "got10k_val", "--root", root, "--results", results,
                         "--weights", weights, "--name", "tiny", "--search-factor", "4.0", "--quiet")
    assert code == 2 and "other settings" in err and "search_factor" in err and "Traceback" not in err
    # the non-official tracker settings likewise; under a new name they are recorded in run.json
    for flag, value, key in (("--hold-below", "0.3", "hold_below"), ("--max-scale-change", "1.05", "max_scale_change")):
        code, out, err = run(capsys, "eval", "--dataset", "got10k_val", "--root", root, "--results", results,
                             "--weights", weights, "--name", "tiny", flag, value, "--quiet")
        assert code == 2 and "other settings" in err and key in err
        code, out, err = run(capsys, "eval", "--dataset", "got10k_val", "--root", root, "--results", results,
                             "--weights", weights, "--name", key, flag, value, "--quiet")
        assert code == 0 and f'"{key}": {value}' in (results / key / "got10k_val" / "run.json").read_text(), err
    code, out, err = run(capsys, "eval", "--dataset", "got10k_val", "--root", root, "--results", results,
                         "--weights", weights, "--name", "int", "--integer-boxes", "--quiet")
    assert code == 0, err
    floats = read_result_boxes(folder / f"{first}.txt")
    ints = (results / "int" / "got10k_val" / f"{first}.txt").read_text().splitlines()
    assert [line.split(",") for line in ints] == [[str(int(v)) for v in row] for row in floats]


def test_workers_2_match_workers_1_and_failures_are_named(weights, got_val, tmp_path, capsys):
    root, gts = got_val
    bench = resolve_benchmark("got10k", root)
    assert bench.key == "got10k_val"
    one = run_benchmark(bench, tmp_path / "r", weights=weights, name="w1", workers=1, progress=False)
    two = run_benchmark(bench, tmp_path / "r", weights=weights, name="w2", workers=2, progress=False)
    assert one.ok and two.ok and sorted(one.done) == sorted(two.done) == sorted(gts)
    for name in gts:
        a = (tmp_path / "r" / "w1" / "got10k_val" / f"{name}.txt").read_text()
        assert a == (tmp_path / "r" / "w2" / "got10k_val" / f"{name}.txt").read_text()

    # a corrupt frame: that sequence is named and counted, the other one is finished; exit code 1
    bad, good = sorted(gts)
    (root / bad / "00000003.jpg").write_bytes(b"not a jpeg")
    code, out, err = run(capsys, "eval", "--dataset", "got10k_val", "--root", root, "--results", tmp_path / "r",
                         "--tracker", "kcf", "--quiet")
    assert code == 1
    assert f"sequence {bad} failed" in err and "00000003.jpg" in err
    assert "1 sequence(s) tracked" in out and "1 failed" in out and f"failed: {bad}" in out
    kcf = tmp_path / "r" / "opencv_kcf" / "got10k_val"
    assert (kcf / f"{good}.txt").is_file() and not (kcf / f"{bad}.txt").exists()


# -- reading result folders --------------------------------------------------------------------------
def _write_ours(folder: Path, preds: dict, times: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, p in preds.items():
        (folder / f"{name}.txt").write_text(_lines(p, fmt="{:.4f}"))
        if times:
            (folder / f"{name}_time.txt").write_text("".join(f"{0.01:f}\n" for _ in p))


def test_lasot_defaults_to_the_test_split_when_training_videos_are_present(tmp_path):
    make_lasot(tmp_path / "lasot")  # cat-1 and dog-7: both test videos -> every sequence found
    assert resolve_benchmark("lasot", tmp_path / "lasot").options == {}
    _frames(tmp_path / "lasot" / "dog" / "dog-3" / "img", 2, lambda i: f"{i + 1:08d}.jpg", seed=1)  # a training video
    bench = resolve_benchmark("lasot", tmp_path / "lasot")
    assert bench.options == {"split": "test"}
    with pytest.raises(InputError, match=r"278 sequence\(s\) not found.*--split all"):
        bench.open()
    assert resolve_benchmark("lasot", tmp_path / "lasot", split="all").options == {}


def test_report_equals_metrics_computed_directly_lasot_and_got10k(got_val, tmp_path):
    lasot = make_lasot(tmp_path / "lasot")
    bench = resolve_benchmark("lasot", tmp_path / "lasot")
    preds = {n: _perturbed(gt, seed=i) for i, (n, (gt, _, _)) in enumerate(sorted(lasot.items()))}
    _write_ours(tmp_path / "res" / "mine" / "lasot", preds)
    report = evaluate([tmp_path / "res" / "mine"], bench)
    direct = aggregate(
        sequence_metrics(preds[n], gt, "lasot", target_visible=lasot_target_visible(occ, oov))
        for n, (gt, occ, oov) in sorted(lasot.items())
    )
    row = report.trackers[0]
    assert row.name == "mine" and report.protocol == "lasot"
    assert row.scores == {"AUC": direct["AUC"], "OP50": direct["OP50"], "OP75": direct["OP75"],
                          "P-norm": direct["Norm Precision"], "P": direct["Precision"]}
    assert row.fps == pytest.approx(100.0)
    table = report.markdown()
    assert f"| mine | {direct['AUC']:.2f} | {direct['OP50']:.2f} |" in table and "| 100.0 |" in table

    got_conv = evaluate([tmp_path / "res" / "mine"], bench, convention="got10k").trackers[0]
    direct_got = aggregate(
        sequence_metrics(preds[n], gt, "lasot", convention="got10k") for n, (gt, _, _) in sorted(lasot.items())
    )
    assert got_conv.scores["AUC"] == direct_got["success_score"] * 100
    assert got_conv.scores["P-norm"] == direct_got["normalized_precision_score"] * 100

    # GOT-10k val: pytracking numbers plus AO/SR of the GOT-10k protocol (image clip, cover)
    root, gts = got_val
    gbench = resolve_benchmark("got10k_val", root.parent)
    gpreds = {n: _perturbed(gt, seed=7 + i) for i, (n, gt) in enumerate(sorted(gts.items()))}
    _write_ours(tmp_path / "res" / "mine" / "got10k_val", gpreds, times=False)
    grow = evaluate([tmp_path / "res" / "mine"], gbench).trackers[0]
    covers = {n: [8] * (len(gt) - 1) + [0] for n, gt in gts.items()}
    dgot = aggregate(sequence_metrics(gpreds[n], gts[n], "got10k", convention="got10k", image_size=(W, H),
                                      cover=covers[n]) for n in sorted(gts))
    dpyt = aggregate(sequence_metrics(gpreds[n], gts[n], "otb") for n in sorted(gts))
    assert grow.scores["AUC"] == dpyt["AUC"] and grow.scores["P"] == dpyt["Precision"]
    assert grow.scores["AO"] == dgot["ao"] * 100 and grow.scores["SR0.5"] == dgot["sr"] * 100
    assert np.isnan(grow.fps)


def test_report_cli_table_and_plots_are_valid_pngs(got_val, tmp_path, capsys, monkeypatch):
    root, gts = got_val
    for k, tracker in enumerate(("a", "b")):
        _write_ours(tmp_path / "res" / tracker / "got10k_val",
                    {n: _perturbed(gt, seed=k) for n, gt in gts.items()})
    args = ["report", tmp_path / "res" / "a", f"B={tmp_path / 'res' / 'b'}", "--dataset", "got10k_val", "--root", root]
    code, out, err = run(capsys, *args, "--out", tmp_path / "table.md")
    assert code == 0, err
    assert "| a |" in out and "| B |" in out and (tmp_path / "table.md").read_text().count("\n| ") == 3
    code, out, err = run(capsys, *args, "--out", tmp_path / "table.md")
    assert code == 2 and "exists" in err
    with monkeypatch.context() as m:  # no matplotlib: a clear error, no traceback
        m.setitem(sys.modules, "matplotlib", None)
        code, out, err = run(capsys, *args, "--plots", tmp_path / "plots")
        assert code == 2 and "matplotlib" in err and "Traceback" not in err

    import matplotlib  # noqa: F401  (a dependency)
    code, out, err = run(capsys, *args, "--plots", tmp_path / "plots")
    assert code == 0, err
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert {p.name for p in pngs} >= {"success_plot.png", "precision_plot.png", "norm_precision_plot.png"}
    for p in pngs:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82")
        width, height = struct.unpack(">II", data[16:24])
        assert width > 100 and height > 100
        assert cv2.imread(str(p)) is not None


def test_merge_runs_averages_pytracking_run_folders(tmp_path, capsys):
    lasot = make_lasot(tmp_path / "lasot")
    bench = resolve_benchmark("lasot", tmp_path / "lasot")
    base = tmp_path / "tracking_results" / "mixformer2_vit_online"
    for k in range(3):
        _write_ours(base / f"288_depth8_score_{k:03d}",
                    {n: _perturbed(gt, seed=10 + k + i) for i, (n, (gt, _, _)) in enumerate(sorted(lasot.items()))})
    _write_ours(tmp_path / "other", {n: _perturbed(gt, seed=99) for n, (gt, _, _) in lasot.items()})
    runs = sorted(base.iterdir())
    report = evaluate([*runs, tmp_path / "other"], bench)
    merged = merge_runs(report)
    assert [t.name for t in merged.trackers] == ["288_depth8_score", "other"]
    row, single = merged.trackers
    assert row.runs == 3 and single is report.trackers[3]
    aucs = np.array([t.scores["AUC"] for t in report.trackers[:3]])
    assert aucs.std() > 0  # the runs differ, so the mean is not any single run
    assert row.scores["AUC"] == pytest.approx(aucs.mean()) and row.spread["AUC"] == pytest.approx(aucs.std())
    np.testing.assert_allclose(row.curves["success"][1], np.mean([t.curves["success"][1] for t in report.trackers[:3]], 0))
    assert f"| 288_depth8_score | {aucs.mean():.2f} ± {aucs.std():.2f} |" in merged.markdown()

    code, out, err = run(capsys, "report", *runs, tmp_path / "other", "--dataset", "lasot",
                         "--root", tmp_path / "lasot", "--merge-runs")
    assert code == 0 and "| 288_depth8_score |" in out and "_001" not in out


def test_pytracking_and_ostrack_layouts_with_integer_tab_boxes(tmp_path):
    lasot = make_lasot(tmp_path / "lasot")
    bench = resolve_benchmark("lasot", tmp_path / "lasot")
    preds = {n: np.trunc(_perturbed(gt, seed=3)) for n, (gt, _, _) in lasot.items()}
    param = tmp_path / "tracking_results" / "mixformer2_vit_online" / "288_depth8_score"
    ostrack = tmp_path / "ostrack_fork" / "vitb_256" / "lasot"  # forks that add a <dataset>/ folder
    for folder in (param, ostrack):
        folder.mkdir(parents=True)
        for n, p in preds.items():
            (folder / f"{n}.txt").write_text(_lines(p.astype(int), sep="\t", fmt="{:d}"))
            (folder / f"{n}_time.txt").write_text("0.100000\n" * len(p))
    _write_ours(tmp_path / "ours" / "mine" / "lasot", preds, times=False)
    report = evaluate([param, tmp_path / "ostrack_fork" / "vitb_256", ("ours", tmp_path / "ours" / "mine")], bench)
    names = [t.name for t in report.trackers]
    assert names == ["288_depth8_score", "vitb_256", "ours"]
    assert report.trackers[0].scores == report.trackers[1].scores == report.trackers[2].scores
    assert report.trackers[0].fps == pytest.approx(10.0)
    folder = ResultFolder.locate(param, bench, lasot)
    assert folder.sequence_names() == sorted(lasot)
    np.testing.assert_array_equal(folder.load("cat-1").boxes, preds["cat-1"])

    # pytracking's GOT-10k sub-folder: <param>/got10k/<seq>.txt
    gts = make_got10k(tmp_path / "got" / "val", "val")
    for n, gt in gts.items():
        (param / "got10k").mkdir(exist_ok=True)
        (param / "got10k" / f"{n}.txt").write_text(_lines(np.array(gt, int), sep="\t", fmt="{:d}"))
    got = evaluate([param], resolve_benchmark("got10k_val", tmp_path / "got"))
    assert got.trackers[0].path == param / "got10k" and got.trackers[0].scores["AO"] > 90


def test_uav_results_with_pytracking_prefix_and_nan_ground_truth(tmp_path, capsys):
    from mixformerv2.data.formats.uav import UAV123_SEQUENCES

    root = tmp_path / "uav"
    for entry in UAV123_SEQUENCES.values():  # the reader wants every annotation file of its table
        (root / entry.anno).parent.mkdir(parents=True, exist_ok=True)
        (root / entry.anno).write_text("1,1,1,1\n")
    entry = UAV123_SEQUENCES["uav6"]
    n = entry.last - entry.first + 1
    gt = np.array([[10.0 + i % 7, 12.0, 20.0, 16.0] for i in range(n)])
    gt[3] = np.nan  # target out of view: allowed in the uav mode
    (root / entry.anno).write_text(_lines(gt))
    pred = np.trunc(_perturbed(np.nan_to_num(gt, nan=5.0), seed=2))
    param = tmp_path / "pytracking" / "dimp" / "dimp50"
    param.mkdir(parents=True)
    (param / "uav_uav6.txt").write_text(_lines(pred.astype(int), sep="\t", fmt="{:d}"))
    bench = resolve_benchmark("uav", root, sequences=["uav6"])
    assert (bench.key, bench.reader, bench.mode) == ("uav", "uav123", "uav")
    row = evaluate([param], bench).trackers[0]
    direct = aggregate([sequence_metrics(pred, gt, "uav")])
    assert row.name == "dimp50" and row.scores["AUC"] == direct["AUC"] and row.scores["P"] == direct["Precision"]
    code, out, err = run(capsys, "report", param, "--dataset", "uav", "--root", root, "--sequence", "uav6")
    assert code == 0, err
    assert f"| dimp50 | {direct['AUC']:.2f} |" in out


def test_bad_result_files_name_sequence_and_line(tmp_path, capsys):
    lasot = make_lasot(tmp_path / "lasot")
    bench = resolve_benchmark("lasot", tmp_path / "lasot")
    folder = tmp_path / "res" / "t" / "lasot"
    _write_ours(folder, {n: gt for n, (gt, _, _) in lasot.items()})
    good = evaluate([tmp_path / "res" / "t"], bench).trackers[0].scores

    text = (folder / "cat-1.txt").read_text().splitlines()
    (folder / "cat-1.txt").write_text("\n".join(text[:2] + ["nan,nan,nan,nan"] + text[3:]) + "\n")
    with pytest.raises(ResultError, match=r"cat-1\.txt: line 3: NaN"):
        evaluate([tmp_path / "res" / "t"], bench)
    (folder / "cat-1.txt").write_text("\n".join(text[:2] + ["1,2,3"] + text[3:]) + "\n")
    with pytest.raises(ResultError, match=r"cat-1\.txt: line 3: expected 4 values"):
        evaluate([tmp_path / "res" / "t"], bench)
    (folder / "cat-1.txt").write_text("\n".join(text[:4]) + "\n")
    with pytest.raises(ResultError, match=r"t/cat-1 .*4 result lines but the ground truth has 6 frames"):
        evaluate([tmp_path / "res" / "t"], bench)
    (folder / "cat-1.txt").write_text("\n".join(text + ["1,1,5,5", "2,2,5,5"]) + "\n")  # longer: cut, warned
    report = evaluate([tmp_path / "res" / "t"], bench)
    assert report.trackers[0].scores == good
    assert any("cat-1" in w and "8 result lines for 6" in w for w in report.warnings)
    (folder / "cat-1.txt").write_text("\n".join(text) + "\n")
    (folder / "cat-1.txt").write_text("\n".join(text[:1] + ["5,5,-3,4"] + text[2:]) + "\n")
    with pytest.raises(ResultError, match=r"t/cat-1: .*negative"):
        evaluate([tmp_path / "res" / "t"], bench)

    # a missing sequence is an error naming it; --allow-missing evaluates the rest with a warning
    (folder / "cat-1.txt").unlink()
    code, out, err = run(capsys, "report", tmp_path / "res" / "t", "--dataset", "lasot", "--root", tmp_path / "lasot")
    assert code == 2 and "cat-1" in err and "Traceback" not in err
    code, out, err = run(capsys, "report", tmp_path / "res" / "t", "--dataset", "lasot", "--root", tmp_path / "lasot",
                         "--allow-missing")
    assert code == 0 and "warning" in err and "cat-1" in err and "1 sequences" in out

    # a time file of the wrong length is ignored with a warning (FPS from the others)
    (folder / "dog-7_time.txt").write_text("0.1\n")
    with pytest.warns(ResultWarning, match="dog-7: time file ignored"):
        ResultFolder(folder).load("dog-7")


# -- submissions -------------------------------------------------------------------------------------
def test_got10k_and_trackingnet_packs(tmp_path):
    gts = make_got10k(tmp_path / "got10k" / "test", "test", lengths=(4, 3), test=True)
    folder = tmp_path / "res" / "t" / "got10k_test"
    preds = {n: _perturbed(gt, seed=1) for n, gt in gts.items()}
    _write_ours(folder, preds)
    out = pack_got10k(tmp_path / "res" / "t", tmp_path / "got10k", tmp_path / "got.zip")
    with zipfile.ZipFile(out) as zf:
        expected = sorted(f"{n}/{n}_{kind}.txt" for n in gts for kind in ("001", "time"))
        assert sorted(zf.namelist()) == expected
        for n, p in preds.items():
            rows = [[float(v) for v in line.split(",")] for line in zf.read(f"{n}/{n}_001.txt").decode().splitlines()]
            np.testing.assert_allclose(rows, p, atol=1e-4)
            assert zf.read(f"{n}/{n}_time.txt").decode().splitlines() == ["0.010000"] * len(p)
    with pytest.raises(InputError, match="exists"):
        pack_got10k(tmp_path / "res" / "t", tmp_path / "got10k", out)
    ints = pack_got10k(tmp_path / "res" / "t", tmp_path / "got10k", out, overwrite=True, integer_boxes=True)
    with zipfile.ZipFile(ints) as zf:
        first = sorted(gts)[0]
        assert zf.read(f"{first}/{first}_001.txt").decode().splitlines()[1] == ",".join(
            str(int(v)) for v in preds[first][1])

    # refused: a missing sequence, a wrong frame count, a missing time file
    second = sorted(gts)[1]
    (folder / f"{second}.txt").rename(tmp_path / "aside.txt")
    with pytest.raises(ResultError, match=f"no result for 1 of 2 test sequence.*{second}"):
        pack_got10k(tmp_path / "res" / "t", tmp_path / "got10k", tmp_path / "new.zip")
    (tmp_path / "aside.txt").rename(folder / f"{second}.txt")
    (folder / f"{second}.txt").write_text("1,2,3,4\n")
    with pytest.raises(ResultError, match=f"{second}: .*1 lines for 3 frames"):
        pack_got10k(tmp_path / "res" / "t", tmp_path / "got10k", tmp_path / "new.zip")
    assert not (tmp_path / "new.zip").exists()

    names = make_trackingnet_test(tmp_path / "trackingnet")
    tfolder = tmp_path / "res" / "t" / "trackingnet"
    tpreds = {n: np.array([[1.5, 2.25, 10, 8]] * k) for n, k in zip(names, (4, 3))}
    _write_ours(tfolder, tpreds, times=False)
    tout = pack_trackingnet(tmp_path / "res" / "t", tmp_path / "trackingnet")
    assert tout == tmp_path / "res" / "t" / "trackingnet.zip"
    with zipfile.ZipFile(tout) as zf:
        assert sorted(zf.namelist()) == [f"{n}.txt" for n in names]
        assert zf.read("video_1.txt").decode() == "1.5000,2.2500,10.0000,8.0000\n" * 3
    (tfolder / "video_0.txt").unlink()
    with pytest.raises(ResultError, match="video_0"):
        pack_trackingnet(tmp_path / "res" / "t", tmp_path / "trackingnet", tmp_path / "tn2.zip")
    with pytest.raises(ResultError, match="no ground truth"):
        evaluate([tmp_path / "res" / "t"], resolve_benchmark("trackingnet", tmp_path / "trackingnet"))
