"""Benchmark metrics against the oracle fixtures of the two peers (pytracking / got10k toolkit).

Every case of the fixture folder (``index.json`` plus any ``cases/*.json`` not listed) is
checked for every peer, mode and flag it holds: expected errors, per-frame arrays, per-sequence
curves and scores; then the dataset-level aggregations and ``comparison.json``. The folder is
``$MIXFORMERV2_METRIC_FIXTURES`` or ``<repo>/../shared/fixtures/metrics``; a missing folder
fails. Tolerances are the README's "Recommended tolerances"; pytracking IoU is compared
bit-for-bit (README step 7).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from mixformerv2.errors import MixFormerError
from mixformerv2.evaluation import (
    GOT10K_GOT_IOU_THRESHOLDS,
    GOT10K_IOU_THRESHOLDS,
    GOT10K_NORM_THRESHOLDS,
    PIXEL_THRESHOLDS,
    PYTRACKING_NORM_THRESHOLDS,
    PYTRACKING_OVERLAP_THRESHOLDS,
    EmptySequenceError,
    InvalidAnnotationError,
    InvalidPredictionError,
    LengthMismatchError,
    MetricsError,
    SequenceResult,
    aggregate,
    lasot_target_visible,
    sequence_metrics,
    success_auc,
)

pytestmark = pytest.mark.metrics

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("MIXFORMERV2_METRIC_FIXTURES", str(REPO.parent / "shared" / "fixtures" / "metrics")))
SCHEMA = "tracking-metric-oracle-fixture/1"
MISSING = "<metric fixtures missing>"

# README "Recommended tolerances"
GOT_FRAME_ATOL = 1e-9
GOT_SCORE_ATOL = 1e-12
PYT_FRAME_ATOL = 1e-9  # centre errors; IoU is exact (bit-for-bit, README step 7)
PYT_CURVE_ATOL = 1e-6  # float32 fractions
PYT_SCORE_ABS, PYT_SCORE_REL = 1e-4, 1e-6  # percent: max(1e-4, 1e-6*|v|)
DEFAULT_RTOL = 1e-9  # floats the README gives no tolerance for (avg_overlap_all)

CHECKS: Counter = Counter()  # (peer/mode) -> number of compared quantities
ELEMENTS: Counter = Counter()  # (peer/mode) -> number of compared numbers


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _decode(obj: Any) -> Any:
    """Turn the strings "NaN" / "Infinity" / "-Infinity" back into floats."""
    if isinstance(obj, dict):
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, str) and obj in _NONFINITE:
        return _NONFINITE[obj]
    return obj


def _load(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return _decode(json.load(fh))


def _require_fixtures() -> None:
    if not FIXTURES.is_dir():
        pytest.fail(f"metric fixture folder not found: {FIXTURES} (set MIXFORMERV2_METRIC_FIXTURES)")
    if not (FIXTURES / "index.json").is_file():
        pytest.fail(f"{FIXTURES}/index.json is missing")


def _case_paths() -> list[Path]:
    """Cases named in index.json, then any cases/*.json not listed there."""
    if not (FIXTURES / "index.json").is_file():
        return []
    index = _load(FIXTURES / "index.json")
    paths = [FIXTURES / entry["file"] for entry in index["cases"]]
    listed = {p.resolve() for p in paths}
    extra = sorted(p for p in (FIXTURES / "cases").glob("*.json") if p.resolve() not in listed)
    return paths + extra


_CASE_CACHE: dict[Path, dict] = {}


def _case(path: Path) -> dict:
    if path not in _CASE_CACHE:
        _CASE_CACHE[path] = _load(path)
    return _CASE_CACHE[path]


def _all_cases() -> dict[str, dict]:
    out = {}
    for p in _case_paths():
        d = _case(p)
        assert d["case_id"] not in out, f"duplicate case id {d['case_id']}"
        out[d["case_id"]] = d
    return out


def _params(kind: str) -> list:
    """Collection-time parameters; a single MISSING marker (which fails) if there is no folder."""
    if not FIXTURES.is_dir() or not (FIXTURES / "index.json").is_file():
        return [pytest.param(MISSING, id="fixtures-missing")]
    out = []
    for p in _case_paths():
        try:
            d = _case(p)
        except (OSError, ValueError) as exc:  # unreadable case: fail in the test, do not hide it
            out.append(pytest.param((p, None, str(exc)), id=f"{p.stem}-unreadable"))
            continue
        if kind == "case":
            out.append(pytest.param((p, None, None), id=p.stem))
        else:
            for mode in d.get(kind, {}):
                out.append(pytest.param((p, mode, None), id=f"{d['case_id']}-{mode}"))
    return out or [pytest.param(MISSING, id="no-cases")]


def _dataset_params() -> list:
    path = FIXTURES / "dataset_level.json"
    if not path.is_file():
        return [pytest.param(MISSING, id="dataset-level-missing")]
    d = _load(path)
    out = []
    for agg, peers in d["aggregations"].items():
        for peer, modes in peers.items():
            if peer == "description":
                continue
            for mode, block in modes.items():
                if peer == "pytracking":
                    for flag in block:
                        out.append(pytest.param((agg, peer, mode, flag), id=f"{agg}-{peer}-{mode}-{flag}"))
                else:
                    out.append(pytest.param((agg, peer, mode, None), id=f"{agg}-{peer}-{mode}"))
    return out or [pytest.param(MISSING, id="no-aggregations")]


# --------------------------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------------------------


def _close(actual: Any, expected: Any, atol: Any, rtol: float, what: str, key: str) -> None:
    """|a - e| <= atol + rtol*|e| elementwise; NaN matches NaN, infinities must be equal."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    both_nan = np.isnan(a) & np.isnan(e)
    equal = (a == e) | both_nan
    with np.errstate(invalid="ignore"):
        tol = np.asarray(atol, dtype=np.float64) + rtol * np.abs(e)
        ok = equal | (np.isfinite(a) & np.isfinite(e) & (np.abs(a - e) <= tol))
    if not ok.all():
        bad = np.flatnonzero(~ok.reshape(-1))
        i = int(bad[0])
        raise AssertionError(
            f"{what}: {bad.size} of {ok.size} values differ; first at {i}: "
            f"ours {a.reshape(-1)[i]!r} vs peer {e.reshape(-1)[i]!r}"
        )
    CHECKS[key] += 1
    ELEMENTS[key] += int(e.size)


def _exact(actual: Any, expected: Any, what: str, key: str) -> None:
    _close(actual, expected, 0.0, 0.0, what, key)


def _exact_int(actual: Any, expected: Any, what: str, key: str) -> None:
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    assert (a == e).all(), f"{what}: {np.flatnonzero(a != e).size} entries differ (ours {a!r}, peer {e!r})"
    CHECKS[key] += 1
    ELEMENTS[key] += int(e.size)


def _pyt_score(actual: Any, expected: Any, what: str, key: str) -> None:
    e = np.asarray(expected, dtype=np.float64)
    _close(actual, expected, np.maximum(PYT_SCORE_ABS, PYT_SCORE_REL * np.abs(e)), 0.0, what, key)


# peer error text -> (accepted classes of ours, text our message must contain)
_ERROR_KINDS: list[tuple[str, tuple[type, ...], str | None]] = [
    ("Invalid results", (InvalidPredictionError,), "Invalid results"),
    ("NaNs in annotation", (InvalidAnnotationError,), "NaNs in annotation"),
    ("Mis-match in tracker prediction and GT lengths", (LengthMismatchError,), "Mis-match"),
    ("Seq length zero", (EmptySequenceError,), "Seq length zero"),
    ("Nans in calculated overlap", (MetricsError,), "Nans in calculated overlap"),
    ("AssertionError", (LengthMismatchError,), None),  # got10k length/shape assertions
    ("IndexError", (LengthMismatchError, EmptySequenceError), None),  # rows beyond a shorter GT
]


def _expect_error(peer_error: str, call: Callable[[], Any], what: str, key: str) -> None:
    """Our call must raise the same kind of error as the peer."""
    classes: tuple[type, ...] = (MetricsError,)
    needle = None
    for text, cls, must in _ERROR_KINDS:
        if text in peer_error:
            classes, needle = cls, must
            break
    with pytest.raises(MixFormerError) as info:
        call()
    assert isinstance(info.value, classes), (
        f"{what}: peer raised {peer_error!r}; ours raised {type(info.value).__name__}: {info.value}"
    )
    if needle is not None:
        assert needle.lower() in str(info.value).lower(), f"{what}: message {info.value} lacks {needle!r}"
    CHECKS[key] += 1


# --------------------------------------------------------------------------------------------
# Running our code on a case
# --------------------------------------------------------------------------------------------

_PYT_MODE_KEYS = {
    "dataset_arg", "target_visible_passed", "per_frame", "per_frame_error",
    "per_frame_error_without_io_shim", "per_frame_io_shim",
}  # fmt: skip
_PYT_FLAG_KEYS = {
    "AUC", "OP50", "OP75", "Precision", "Norm Precision", "avg_overlap_all",
    "ave_success_rate_plot_overlap", "ave_success_rate_plot_center",
    "ave_success_rate_plot_center_norm", "derived_denominator", "error",
    "error_without_io_shim", "io_shim",
}  # fmt: skip
_PYT_FRAME_KEYS = {"iou", "center_error", "norm_center_error", "valid", "n_frames_evaluated"}
_FLAG_RE = re.compile(r"^exclude_invalid_frames=(true|false)$")
_IO_ERRORS = ("IndexError", "ValueError", "AssertionError")


def _pyt_kwargs(case: dict, mode_key: str) -> dict:
    block = case["pytracking"][mode_key]
    inputs = case["inputs"]
    tv = None
    if block.get("target_visible_passed"):
        tv = lasot_target_visible(inputs["lasot_full_occlusion"], inputs["lasot_out_of_view"])
    return {"mode": block.get("dataset_arg", mode_key), "target_visible": tv, "convention": "pytracking"}


def _run_pyt(case: dict, mode_key: str, exclude: bool) -> SequenceResult:
    inputs = case["inputs"]
    return sequence_metrics(
        inputs["pred_xywh"], inputs["gt_xywh"], exclude_invalid_frames=exclude, **_pyt_kwargs(case, mode_key)
    )


def _run_got(case: dict, protocol: str) -> SequenceResult:
    inputs = case["inputs"]
    return sequence_metrics(
        inputs["pred_xywh"],
        inputs["gt_xywh"],
        protocol,
        convention="got10k",
        image_size=inputs["image_size_wh"],
        cover=inputs["got10k_cover"],
    )


def _check_io_shim(block: dict, prefix: str, what: str) -> None:
    """``*_error_without_io_shim`` is the one-row np.loadtxt quirk: an I/O error, values given."""
    if f"{prefix}error_without_io_shim" in block:
        err = block[f"{prefix}error_without_io_shim"]
        assert err.startswith(_IO_ERRORS), f"{what}: unexpected non-I/O error behind the shim: {err}"
        assert block.get(f"{prefix}io_shim") is True, f"{what}: error_without_io_shim without io_shim=true"


# --------------------------------------------------------------------------------------------
# Tests: fixture folder, thresholds, API
# --------------------------------------------------------------------------------------------


def test_fixture_folder_and_index() -> None:
    _require_fixtures()
    index = _load(FIXTURES / "index.json")
    assert index["cases"], "index.json lists no case"
    for entry in index["cases"]:
        path = FIXTURES / entry["file"]
        assert path.is_file(), f"{path} listed in index.json is missing"
        case = _case(path)
        assert case["schema"] == SCHEMA
        assert case["case_id"] == entry["case_id"]
        inputs = case["inputs"]
        assert len(inputs["gt_xywh"]) == inputs["n_frames_gt"] == entry["n_frames_gt"]
        assert len(inputs["pred_xywh"]) == inputs["n_frames_pred"] == entry["n_frames_pred"]
        for flag in ("in_dataset_aggregate", "in_common_aggregate"):
            assert inputs[flag] == entry[flag]
    assert len(_all_cases()) == len(_case_paths())


def test_thresholds_equal_conventions() -> None:
    _require_fixtures()
    conv = _load(FIXTURES / "conventions.json")
    key = "thresholds"
    pyt, got = conv["pytracking"], conv["got10k_otb_lasot"]
    _exact(PYTRACKING_OVERLAP_THRESHOLDS, pyt["threshold_set_overlap"], "pytracking overlap thresholds", key)
    _exact(PIXEL_THRESHOLDS, pyt["threshold_set_center"], "pytracking centre thresholds", key)
    _exact(PYTRACKING_NORM_THRESHOLDS, pyt["threshold_set_center_norm"], "pytracking norm thresholds", key)
    _exact(GOT10K_IOU_THRESHOLDS, got["thr_iou"], "got10k IoU thresholds", key)
    _exact(PIXEL_THRESHOLDS, got["thr_ce"], "got10k centre thresholds", key)
    _exact(GOT10K_NORM_THRESHOLDS, got["thr_nce"], "got10k norm thresholds", key)
    _exact(GOT10K_GOT_IOU_THRESHOLDS, conv["got10k_got10k"]["thr_iou"], "GOT-10k IoU thresholds", key)
    assert conv["got10k_otb_lasot"]["iou_eps_added_to_union"] == np.finfo(float).eps
    grids = {"overlap_21": (PYTRACKING_OVERLAP_THRESHOLDS, GOT10K_IOU_THRESHOLDS),
             "norm_center_51": (PYTRACKING_NORM_THRESHOLDS, GOT10K_NORM_THRESHOLDS)}  # fmt: skip
    for name, diffs in conv["grid_differences"].items():
        ours_pyt, ours_got = grids[name]
        for d in diffs:
            assert ours_pyt[d["index"]] == d["pytracking"] and ours_got[d["index"]] == d["got10k"]


def test_api_basics() -> None:
    gt = np.array([[10, 20, 30, 40], [12, 21, 30, 40], [14, 22, 30, 40]], dtype=float)
    assert success_auc(gt, gt) == pytest.approx(100 * 20 / 21, abs=1e-4)  # nothing is > 1.0
    r = sequence_metrics(gt, gt)
    assert r.convention == "pytracking" and r.mode == "otb" and r.denominator == 3
    assert r.success_curve.dtype == np.float32 and r.scores["Precision"] == 100.0
    assert sequence_metrics(gt, gt, "trackingnet").mode == "otb"  # any other dataset name
    with pytest.raises(MetricsError, match="target_visible"):
        sequence_metrics(gt, gt, "lasot")
    with pytest.raises(LengthMismatchError):
        sequence_metrics(gt, gt, "lasot", target_visible=[1, 1])
    with pytest.raises(MetricsError, match="image_size"):
        sequence_metrics(gt, gt, "got10k", convention="got10k")
    with pytest.raises(MixFormerError):
        sequence_metrics(gt[:, :3], gt)
    with pytest.raises(MixFormerError):
        sequence_metrics(gt, gt, convention="vot")
    with pytest.raises(EmptySequenceError):
        aggregate([])
    with pytest.raises(MetricsError, match="different"):
        aggregate([r, sequence_metrics(gt, gt, "uav")])
    g = sequence_metrics(gt, gt, "got10k", convention="got10k", image_size=(100, 100), cover=[1, 1, 0])
    assert g.frame_mask.tolist() == [True, False] and g.scores["ao"] == 1.0
    one = sequence_metrics(gt[:1], gt[:1], "got10k", convention="got10k", image_size=(100, 100))
    assert math.isnan(one.scores["ao"]) and np.isnan(one.success_curve).all()  # no evaluated frame


# --------------------------------------------------------------------------------------------
# Tests: per case, pytracking
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("param", _params("pytracking"))
def test_pytracking_case(param: Any) -> None:
    _require_fixtures()
    assert param != MISSING, "no case with a pytracking block found"
    path, mode_key, load_error = param
    assert load_error is None, f"{path}: {load_error}"
    case = _case(path)
    assert case["schema"] == SCHEMA
    block = case["pytracking"][mode_key]
    key = f"pytracking/{mode_key}"
    what = f"{case['case_id']} pytracking {mode_key}"
    unknown = set(block) - _PYT_MODE_KEYS - {k for k in block if _FLAG_RE.match(k)}
    assert not unknown, f"{what}: unknown fixture keys {sorted(unknown)}"
    if block.get("target_visible_passed"):
        _exact_int(
            lasot_target_visible(case["inputs"]["lasot_full_occlusion"], case["inputs"]["lasot_out_of_view"]),
            np.asarray(case["inputs"]["lasot_target_visible"], dtype=bool),
            f"{what}: lasot_target_visible",
            key,
        )

    # per-frame call (calc_seq_err_robust does not depend on exclude_invalid_frames)
    _check_io_shim(block, "per_frame_", what)
    if "per_frame_error" in block:
        _expect_error(block["per_frame_error"], lambda: _run_pyt(case, mode_key, False), f"{what} per-frame", key)
    else:
        pf = block["per_frame"]
        unknown = set(pf) - _PYT_FRAME_KEYS
        assert not unknown, f"{what}: unknown per_frame keys {sorted(unknown)}"
        r = _run_pyt(case, mode_key, False)
        n = pf["n_frames_evaluated"]
        assert r.n_frames == n, f"{what}: {r.n_frames} evaluated frames, peer {n}"
        _exact(r.iou, pf["iou"], f"{what}: per-frame IoU (bit-for-bit)", key)
        _close(r.center_error, pf["center_error"], PYT_FRAME_ATOL, 0.0, f"{what}: centre error", key)
        _close(r.norm_center_error, pf["norm_center_error"], PYT_FRAME_ATOL, 0.0, f"{what}: norm centre error", key)
        _exact_int(r.frame_mask, np.asarray(pf["valid"], dtype=bool), f"{what}: valid", key)

    flags = [k for k in block if _FLAG_RE.match(k)]
    assert flags, f"{what}: no exclude_invalid_frames block"
    for flag_key in flags:
        exclude = _FLAG_RE.match(flag_key).group(1) == "true"
        fb = block[flag_key]
        fwhat = f"{what} {flag_key}"
        unknown = set(fb) - _PYT_FLAG_KEYS
        assert not unknown, f"{fwhat}: unknown fixture keys {sorted(unknown)}"
        _check_io_shim(fb, "", fwhat)
        if "error" in fb:
            _expect_error(fb["error"], lambda: _run_pyt(case, mode_key, exclude), fwhat, key)
            continue
        r = _run_pyt(case, mode_key, exclude)
        assert r.exclude_invalid_frames is exclude
        for name in ("AUC", "OP50", "OP75", "Precision", "Norm Precision"):
            _pyt_score(r.scores[name], fb[name], f"{fwhat}: {name}", key)
        _close(r.average_overlap, fb["avg_overlap_all"], 0.0, DEFAULT_RTOL, f"{fwhat}: avg_overlap_all", key)
        for attr, name in (
            ("success_curve", "ave_success_rate_plot_overlap"),
            ("precision_curve", "ave_success_rate_plot_center"),
            ("norm_precision_curve", "ave_success_rate_plot_center_norm"),
        ):
            curve = getattr(r, attr)
            assert curve.dtype == np.float32, f"{fwhat}: {attr} stored as {curve.dtype}, peer float32"
            _close(curve, fb[name], PYT_CURVE_ATOL, 0.0, f"{fwhat}: {name}", key)
        _exact_int(r.denominator, fb["derived_denominator"], f"{fwhat}: denominator", key)


# --------------------------------------------------------------------------------------------
# Tests: per case, got10k
# --------------------------------------------------------------------------------------------

_GOT_COMMON_KEYS = {
    "package", "per_frame", "error", "error_without_io_shim", "io_shim", "per_frame_error",
    "per_frame_error_without_io_shim", "per_frame_io_shim", "derived",
}  # fmt: skip
_GOT_SCORE_KEYS = {
    "otb": {"success_curve", "precision_curve", "success_score", "precision_score", "success_rate"},
    "lasot": {"success_curve", "precision_curve", "normalized_precision_curve", "success_score",
              "precision_score", "normalized_precision_score", "success_rate"},
    "got10k": {"ao", "sr", "length", "success_curve"},
}  # fmt: skip


def _got_per_frame(r: SequenceResult, protocol: str, pf: dict, what: str, key: str) -> None:
    known = {
        "iou": lambda: _close(r.iou, pf["iou"], GOT_FRAME_ATOL, 0.0, f"{what}: IoU", key),
        "center_error": lambda: _close(r.center_error, pf["center_error"], GOT_FRAME_ATOL, 0.0, f"{what}: CE", key),
        "norm_center_error": lambda: _close(
            r.norm_center_error, pf["norm_center_error"], GOT_FRAME_ATOL, 0.0, f"{what}: NCE", key
        ),
        "evaluated_frame_mask": lambda: _exact_int(
            r.frame_mask, np.asarray(pf["evaluated_frame_mask"], dtype=bool), f"{what}: evaluated mask", key
        ),
        "n_frames_after_truncation": lambda: _exact_int(
            r.n_frames, pf["n_frames_after_truncation"], f"{what}: frames after truncation", key
        ),
        "iou_frames_1_to_end": lambda: _close(
            r.iou, pf["iou_frames_1_to_end"], GOT_FRAME_ATOL, 0.0, f"{what}: IoU frames 1..", key
        ),
        "kept_mask_frames_1_to_end": lambda: _exact_int(
            r.frame_mask, np.asarray(pf["kept_mask_frames_1_to_end"], dtype=bool), f"{what}: kept mask", key
        ),
    }
    unknown = set(pf) - set(known)
    assert not unknown, f"{what}: unknown per_frame keys {sorted(unknown)}"
    for name in pf:
        known[name]()


@pytest.mark.parametrize("param", _params("got10k"))
def test_got10k_case(param: Any) -> None:
    _require_fixtures()
    assert param != MISSING, "no case with a got10k block found"
    path, protocol, load_error = param
    assert load_error is None, f"{path}: {load_error}"
    case = _case(path)
    block = case["got10k"][protocol]
    key = f"got10k/{protocol}"
    what = f"{case['case_id']} got10k {protocol}"
    assert protocol in _GOT_SCORE_KEYS, f"{what}: unknown got10k protocol"
    assert "package" in block, f"{what}: no package"
    unknown = set(block) - _GOT_COMMON_KEYS - _GOT_SCORE_KEYS[protocol]
    assert not unknown, f"{what}: unknown fixture keys {sorted(unknown)}"
    _check_io_shim(block, "per_frame_", what)
    _check_io_shim(block, "", what)

    if "per_frame_error" in block:
        _expect_error(block["per_frame_error"], lambda: _run_got(case, protocol), f"{what} per-frame", key)
    elif "per_frame" in block:
        _got_per_frame(_run_got(case, protocol), protocol, block["per_frame"], what, key)

    if "error" in block:
        _expect_error(block["error"], lambda: _run_got(case, protocol), what, key)
        return
    r = _run_got(case, protocol)
    _close(r.success_curve, block["success_curve"], GOT_SCORE_ATOL, 0.0, f"{what}: success curve", key)
    if protocol == "got10k":
        _close(r.scores["ao"], block["ao"], GOT_SCORE_ATOL, 0.0, f"{what}: ao", key)
        _close(r.scores["sr"], block["sr"], GOT_SCORE_ATOL, 0.0, f"{what}: sr", key)
        _exact_int(r.n_frames - 1, block["length"], f"{what}: length", key)
    else:
        _close(r.precision_curve, block["precision_curve"], GOT_SCORE_ATOL, 0.0, f"{what}: precision curve", key)
        for name in ("success_score", "precision_score", "success_rate"):
            _close(r.scores[name], block[name], GOT_SCORE_ATOL, 0.0, f"{what}: {name}", key)
        if protocol == "lasot":
            _close(r.norm_precision_curve, block["normalized_precision_curve"], GOT_SCORE_ATOL, 0.0,
                   f"{what}: normalized precision curve", key)  # fmt: skip
            _close(r.scores["normalized_precision_score"], block["normalized_precision_score"], GOT_SCORE_ATOL,
                   0.0, f"{what}: normalized_precision_score", key)  # fmt: skip
    derived = {
        "sr_0.75": lambda: r.scores["sr_0.75"],
        "normalized_precision_curve_at_0.2": lambda: r.norm_precision_curve[20],
    }
    for name, value in block.get("derived", {}).items():
        if name == "note":
            continue
        assert name in derived, f"{what}: unknown derived value {name}"
        _close(derived[name](), value, GOT_SCORE_ATOL, 0.0, f"{what}: derived {name}", key)


# --------------------------------------------------------------------------------------------
# Tests: dataset level
# --------------------------------------------------------------------------------------------


def _runs(case: dict, peer: str, mode: str, flag: str | None) -> SequenceResult | None:
    """Our result for a case, or None where ours raises a metrics error."""
    try:
        if peer == "pytracking":
            return _run_pyt(case, mode, _FLAG_RE.match(flag).group(1) == "true")
        return _run_got(case, mode)
    except MetricsError:
        return None


@pytest.mark.parametrize("param", _dataset_params())
def test_dataset_level(param: Any) -> None:
    _require_fixtures()
    assert param != MISSING, "dataset_level.json missing or empty"
    agg, peer, mode, flag = param
    data = _load(FIXTURES / "dataset_level.json")
    assert data["schema"] == SCHEMA
    block = data["aggregations"][agg][peer][mode]
    if flag is not None:
        block = block[flag]
    key = f"dataset/{peer}/{mode}"
    what = f"{agg} {peer} {mode} {flag or ''}".strip()
    cases = _all_cases()
    listed = list(block["sequences"]) + list(block["excluded"])
    missing = [c for c in listed if c not in cases]
    assert not missing, f"{what}: cases not in the fixture folder: {missing}"

    results = {c: _runs(cases[c], peer, mode, flag) for c in listed}
    if agg == "runnable":
        expected = [c for c in listed if results[c] is not None and cases[c]["inputs"]["in_dataset_aggregate"]]
    else:
        expected = [c for c in listed if cases[c]["inputs"]["in_common_aggregate"]]
    assert sorted(expected) == sorted(block["sequences"]), f"{what}: our sequence list differs"
    not_run = [c for c in block["sequences"] if results[c] is None]
    assert not not_run, f"{what}: ours raises on {not_run}"
    CHECKS[key] += 1

    overall = aggregate(results[c] for c in block["sequences"])
    if peer == "pytracking":
        for name in ("AUC", "OP50", "OP75", "Precision", "Norm Precision", "auc_curve", "prec_curve",
                     "norm_prec_curve"):  # fmt: skip
            _pyt_score(overall[name], block[name], f"{what}: {name}", key)
        return
    if mode == "got10k":
        names = ("ao", "sr", "succ_curve")
        derived = {"sr_0.75": overall["sr_0.75"]}
    else:
        names = tuple(k for k in block if k not in ("sequences", "excluded", "derived"))
        derived = {"normalized_precision_curve_at_0.2": overall.get("normalized_precision_curve", [math.nan] * 21)[20]}
    for name in names:
        assert name in overall, f"{what}: ours lacks {name}"
        _close(overall[name], block[name], GOT_SCORE_ATOL, 0.0, f"{what}: {name}", key)
    for name, value in block.get("derived", {}).items():
        if name != "note":
            assert name in derived, f"{what}: unknown derived value {name}"
            _close(derived[name], value, GOT_SCORE_ATOL, 0.0, f"{what}: derived {name}", key)


# --------------------------------------------------------------------------------------------
# Tests: comparison.json (headline numbers as fractions)
# --------------------------------------------------------------------------------------------

_PYT_PERCENT = {"auc": "AUC", "precision_20px": "Precision", "norm_precision": "Norm Precision",
                "sr_0.5": "OP50", "sr_0.75": "OP75"}  # fmt: skip
_GOT_FRACTION = {
    ("auc", r"(otb|lasot)"): ("success_score", None),
    ("precision_20px", r"(otb|lasot)"): ("precision_score", None),
    ("norm_precision", r"(lasot)_mean_over_curve"): ("normalized_precision_score", None),
    ("norm_precision", r"(lasot)_curve_at_0\.2"): (None, lambda r: r.norm_precision_curve[20]),
    ("ao", r"ao"): ("ao", None),
    ("sr_0.5", r"sr"): ("sr", None),
    ("sr_0.75", r"success_curve_at_0\.75"): ("sr_0.75", None),
}
_PYT_KEY_RE = re.compile(r"^pytracking_([a-z0-9]+?)(?:_at_0\.2|_avg_overlap_all|_OP50|_OP75)?$")


def _comparison_value(case: dict, metric: str, name: str) -> tuple[Callable[[], float], str]:
    """(callable giving our value as a fraction, tolerance kind) for one comparison entry."""
    m = _PYT_KEY_RE.match(name)
    if m:
        mode = m.group(1)
        if metric == "ao":
            return (lambda: _run_pyt(case, mode, False).average_overlap), "rel"
        return (lambda: _run_pyt(case, mode, False).scores[_PYT_PERCENT[metric]] / 100.0), "pyt"
    assert name.startswith("got10k_"), f"unknown comparison entry {metric}/{name}"
    rest = name[len("got10k_"):]
    for (met, pattern), (score, fn) in _GOT_FRACTION.items():
        mm = re.fullmatch(pattern, rest)
        if met == metric and mm:
            protocol = mm.group(1) if mm.groups() else "got10k"
            if score is not None:
                return (lambda: _run_got(case, protocol).scores[score]), "got"
            return (lambda: fn(_run_got(case, protocol))), "got"
    raise AssertionError(f"unknown comparison entry {metric}/{name}")


@pytest.mark.parametrize("param", _params("case"))
def test_comparison(param: Any) -> None:
    _require_fixtures()
    assert param != MISSING
    path, _, load_error = param
    assert load_error is None, f"{path}: {load_error}"
    case = _case(path)
    comp = _load(FIXTURES / "comparison.json")["per_case"]
    cid = case["case_id"]
    if cid not in comp:  # only cases outside index.json may lack an entry
        assert cid not in _index_ids(), f"{cid} has no entry in comparison.json"
        return
    key = "comparison"
    for metric, entries in comp[cid].items():
        if metric == "pytracking_success_at_iou_threshold_1.0":
            entries = {"pytracking_otb": entries}
        for name, value in entries.items():
            what = f"{cid} comparison {metric}/{name}"
            if metric == "pytracking_success_at_iou_threshold_1.0":
                get, kind = (lambda: float(_run_pyt(case, "otb", False).success_curve[-1])), "curve"
            else:
                get, kind = _comparison_value(case, metric, name)
            if value is None:  # that peer raised
                with pytest.raises(MetricsError):
                    get()
                CHECKS[key] += 1
                continue
            ours = get()
            if kind == "pyt":
                tol = max(PYT_SCORE_ABS, PYT_SCORE_REL * abs(value * 100.0)) / 100.0
                _close(ours, value, tol, 0.0, what, key)
            elif kind == "curve":
                _close(ours, value, PYT_CURVE_ATOL, 0.0, what, key)
            elif kind == "rel":
                _close(ours, value, 0.0, DEFAULT_RTOL, what, key)
            else:
                _close(ours, value, GOT_SCORE_ATOL, 0.0, what, key)


def _index_ids() -> set[str]:
    return {e["case_id"] for e in _load(FIXTURES / "index.json")["cases"]}


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    if CHECKS:
        lines = [f"  {k}: {CHECKS[k]} checks, {ELEMENTS[k]} values" for k in sorted(CHECKS)]
        print("\nmetric fixture checks:\n" + "\n".join(lines))
