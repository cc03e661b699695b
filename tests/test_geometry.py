"""Geometry: crops, map-back and clipping against the official tracker trace (fixture E), plus unit tests."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fixtures_official import case_ids, cases_of, require
from mixformerv2.errors import InputError
from mixformerv2.geometry import (
    CropInfo,
    clip_box,
    crop_around,
    cxcywh_to_xyxy,
    iou_xywh,
    map_back,
    normalize_frame,
    validate_box,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)

TRACKERS = cases_of("tracker")


def _load(case):
    case = require(case)
    frames = np.load(case.path / "sequence.npz")["frames"]
    return case.config["tracker_params"], frames, np.load(case.path / "trace.npz")


# -- conformance with the official trace -------------------------------------------------------------
@pytest.mark.conformance
@pytest.mark.parametrize("case", TRACKERS, ids=case_ids(TRACKERS))
def test_search_crops_match_official(case):
    p, frames, trace = _load(case)
    assert len(frames) > 1
    for i in range(1, len(frames)):
        patch, info = crop_around(frames[i], trace["state_in"][i], p["search_factor"], p["search_size"])
        np.testing.assert_array_equal(info.as_array(), trace["search_crop"][i], err_msg=f"crop geometry, frame {i}")
        assert info.resize_factor == trace["search_resize_factor"][i], f"resize factor, frame {i}"
        assert patch.dtype == np.uint8 and patch.shape == trace["search_patches"][i].shape
        np.testing.assert_array_equal(patch, trace["search_patches"][i], err_msg=f"search patch, frame {i} ({cv2.__version__=})")


@pytest.mark.conformance
@pytest.mark.parametrize("case", TRACKERS, ids=case_ids(TRACKERS))
def test_template_crops_match_official(case):
    p, frames, trace = _load(case)
    assert len(trace["template_patch_frames"]) > 0
    for k, f in enumerate(trace["template_patch_frames"]):
        patch, info = crop_around(frames[f], trace["out_box"][f], p["template_factor"], p["template_size"])
        np.testing.assert_array_equal(patch, trace["template_patches"][k], err_msg=f"template crop {k} (frame {f})")


@pytest.mark.conformance
@pytest.mark.parametrize("case", TRACKERS, ids=case_ids(TRACKERS))
def test_rounding_ties_go_to_even(case):
    """The fixture's exact .5 ties of the crop origin land where Python's round puts them."""
    p, frames, trace = _load(case)
    ties = require(case).config["edge_cases"]["rounding_ties"]
    assert ties
    for tie in ties:
        f = tie["frame"]
        if tie["crop"] == "search":
            _, info = crop_around(frames[f], trace["state_in"][f], p["search_factor"], p["search_size"])
        else:
            _, info = crop_around(frames[f], trace["out_box"][f], p["template_factor"], p["template_size"])
        origin = info.x1 if tie["axis"] == "x" else info.y1
        assert origin == tie["half_to_even"], tie


@pytest.mark.conformance
@pytest.mark.parametrize("case", TRACKERS, ids=case_ids(TRACKERS))
def test_map_back_and_clip_match_official(case):
    p, frames, trace = _load(case)
    height, width = frames.shape[1:3]
    for i in range(1, len(frames)):
        box_px = [float(v) for v in trace["pred_box_crop_px"][i]]
        mapped = map_back(box_px, trace["state_in"][i], p["search_size"], float(trace["search_resize_factor"][i]))
        assert all(type(v) is float for v in mapped)
        np.testing.assert_allclose(mapped, trace["mapped_box_unclipped"][i], atol=0.01, rtol=0, err_msg=f"frame {i}")
        clipped = clip_box(mapped, height, width, margin=10)
        assert all(type(v) is float for v in clipped)
        np.testing.assert_allclose(clipped, trace["out_box"][i], atol=0.01, rtol=0, err_msg=f"frame {i}")


# -- crop unit tests ------------------------------------------------------------------------------------
def _reference_sample_target(image, box, factor, out_size):
    """The official sample_target, written with cv2.copyMakeBorder (valid where the copied region is non-empty)."""
    x, y, w, h = box
    side = math.ceil(math.sqrt(w * h) * factor)
    x1 = int(round(x + 0.5 * w - side * 0.5))
    y1 = int(round(y + 0.5 * h - side * 0.5))
    x2, y2 = x1 + side, y1 + side
    pl, pt = max(0, -x1), max(0, -y1)
    pr, pb = max(x2 - image.shape[1] + 1, 0), max(y2 - image.shape[0] + 1, 0)
    crop = image[y1 + pt : y2 - pb, x1 + pl : x2 - pr, :]
    padded = cv2.copyMakeBorder(crop, pt, pb, pl, pr, cv2.BORDER_CONSTANT)
    return cv2.resize(padded, (out_size, out_size))


def test_crop_matches_copymakeborder_reference():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (57, 83, 3), dtype=np.uint8)
    checked = 0
    for _ in range(300):
        w, h = rng.uniform(1, 60, 2)
        x, y = rng.uniform(-w + 1, 83 - 1), rng.uniform(-h + 1, 57 - 1)
        factor, out = float(rng.uniform(0.5, 5)), int(rng.integers(8, 70))
        patch, info = crop_around(image, (x, y, w, h), factor, out)
        if info.side - info.pad_left - info.pad_right <= 0 or info.side - info.pad_top - info.pad_bottom <= 0:
            continue
        np.testing.assert_array_equal(patch, _reference_sample_target(image, (x, y, w, h), factor, out))
        checked += 1
    assert checked > 200


def test_crop_into_a_given_buffer_equals_the_allocating_crop():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (57, 83, 3), dtype=np.uint8)
    buffer = np.empty((32, 32, 3), np.uint8)
    for box in [(20, 15, 10, 12), (-5, 40, 30, 30), (70, -3, 20, 9)]:  # inside, padded left/bottom, right/top
        expected, info = crop_around(image, box, 2.0, 32)
        got, got_info = crop_around(image, box, 2.0, 32, out=buffer)
        assert got is buffer and got_info == info
        np.testing.assert_array_equal(got, expected)
    for wrong in (np.empty((31, 32, 3), np.uint8), np.empty((32, 32, 3), np.float32),
                  np.empty((32, 32, 6), np.uint8)[:, :, :3]):
        with pytest.raises(ValueError, match="crop buffer"):
            crop_around(image, (20, 15, 10, 12), 2.0, 32, out=wrong)


def test_crop_origin_rounds_half_to_even():
    image = np.zeros((50, 50, 3), np.uint8)
    # centre 12.5 - side 4 / 2 = 10.5 -> 10 (half-up would give 11); y: 13.5 - 2 = 11.5 -> 12
    _, info = crop_around(image, (11.5, 12.5, 2.0, 2.0), 2.0, 4)
    assert (info.side, info.x1, info.y1) == (4, 10, 12)
    # negative tie: -1.5 -> -2
    _, info = crop_around(image, (-1.5, 0.0, 4.0, 4.0), 1.0, 4)
    assert info.x1 == -2 and info.pad_left == 2


def test_plus_one_rule_zeroes_last_column_and_row():
    image = np.full((10, 10, 3), 200, np.uint8)
    # crop exactly [6, 10) x [6, 10): reaches the border, so column 9 and row 9 become zero padding
    patch, info = crop_around(image, (6.0, 6.0, 4.0, 4.0), 1.0, 4)
    assert (info.x1, info.y1, info.side, info.pad_right, info.pad_bottom) == (6, 6, 4, 1, 1)
    assert (patch[:3, :3] == 200).all()
    assert (patch[3, :] == 0).all() and (patch[:, 3] == 0).all()
    # one pixel further in: nothing is dropped
    patch, info = crop_around(image, (5.0, 5.0, 4.0, 4.0), 1.0, 4)
    assert info.pad_right == 0 and (patch == 200).all()


@pytest.mark.parametrize("box", [(500.0, 10.0, 20.0, 20.0), (-200.0, -300.0, 20.0, 20.0), (10.0, 400.0, 5.0, 5.0)])
def test_crop_entirely_outside_is_zero(box):
    image = np.full((60, 80, 3), 255, np.uint8)
    patch, info = crop_around(image, box, 2.0, 16)
    assert patch.shape == (16, 16, 3) and patch.dtype == np.uint8
    assert not patch.any()


def test_crop_larger_than_image():
    image = np.full((20, 30, 3), 100, np.uint8)
    patch, info = crop_around(image, (5.0, 5.0, 20.0, 10.0), 5.0, 32)
    assert info.side == math.ceil(math.sqrt(200) * 5) and info.resize_factor == 32 / info.side
    assert patch.shape == (32, 32, 3)
    assert patch.any() and (patch == 0).any()


def test_crop_info_layout():
    info = CropInfo(10, -1, 2, 1, 0, 0, 3, 6.4)
    assert info.as_array().tolist() == [10, -1, 2, 1, 0, 0, 3]
    assert info.as_array().dtype == np.int64


@pytest.mark.parametrize("box", [(0, 0, 0, 5), (0, 0, math.nan, 5), (0, 0, -3, 5), (0, 0, math.inf, 1)])
def test_crop_refuses_degenerate_boxes(box):
    with pytest.raises(InputError):
        crop_around(np.zeros((10, 10, 3), np.uint8), box, 2.0, 8)


# -- map back / clip ------------------------------------------------------------------------------------
def test_map_back_centre_prediction_keeps_state():
    state = [100.0, 50.0, 20.0, 10.0]
    rf = 64 / 90
    half = 0.5 * 64 / rf
    out = map_back([half, half, 20.0, 10.0], state, 64, rf)
    np.testing.assert_allclose(out, state, atol=1e-12)


def test_limit_scale_change():
    from mixformerv2.geometry import limit_scale_change

    prev = (10.0, 20.0, 40.0, 20.0)
    assert limit_scale_change((12.0, 21.0, 41.0, 19.8), prev, 1.05) == [12.0, 21.0, 41.0, 19.8]  # within: as given
    x, y, w, h = limit_scale_change((0.0, 0.0, 80.0, 5.0), prev, 1.05)  # too wide and too flat
    assert (w, h) == (pytest.approx(42.0), pytest.approx(20.0 / 1.05))
    assert (x + w / 2, y + h / 2) == (pytest.approx(40.0), pytest.approx(2.5))  # the given centre


def test_clip_box():
    assert clip_box([-5.0, -5.0, 3.0, 3.0], 100, 200) == [0.0, 0.0, 10.0, 10.0]
    assert clip_box([195.0, 20.0, 30.0, 20.0], 100, 200) == [190.0, 20.0, 10.0, 20.0]
    assert clip_box([10.0, 10.0, -4.0, 20.0], 100, 200) == [10.0, 10.0, 10.0, 20.0]
    assert all(type(v) is float for v in clip_box([-5, -5, 3, 3], 100, 200))


# -- box formats and IoU ------------------------------------------------------------------------------
def test_box_conversions_round_trip():
    rng = np.random.default_rng(1)
    boxes = rng.uniform(0, 100, (5, 3, 4))
    np.testing.assert_allclose(xyxy_to_xywh(xywh_to_xyxy(boxes)), boxes, atol=1e-12)
    np.testing.assert_allclose(xyxy_to_cxcywh(cxcywh_to_xyxy(boxes)), boxes, atol=1e-12)
    assert xywh_to_xyxy([1, 2, 3, 4]).tolist() == [1, 2, 4, 6]
    assert xyxy_to_cxcywh([0, 0, 4, 2]).tolist() == [2, 1, 4, 2]


def test_iou():
    a = np.array([[10, 10, 20, 20], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[10, 10, 20, 20], [10, 0, 10, 10], [5, 0, 10, 10]], float)
    np.testing.assert_allclose(iou_xywh(a, b), [1.0, 0.0, 50 / 150])
    assert iou_xywh([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    assert iou_xywh(a, b[0]).shape == (3,)


# -- validation -----------------------------------------------------------------------------------------
def test_validate_box_accepts_and_returns_floats():
    out = validate_box(np.array([1, 2, 3, 4]), (10, 10, 3))
    assert out == (1.0, 2.0, 3.0, 4.0) and all(type(v) is float for v in out)
    assert validate_box([-5, -5, 6, 6], (10, 10)) == (-5.0, -5.0, 6.0, 6.0)  # partly outside is fine


@pytest.mark.parametrize(
    "box, words",
    [
        ([1, 2, 3], "4 numbers"),
        ([1, 2, 3, 4, 5], "4 numbers"),
        ("abcd", "4 numbers"),
        ([1, math.nan, 3, 4], "non-finite"),
        ([1, 2, math.inf, 4], "non-finite"),
        ([1, 2, 0, 4], "positive"),
        ([1, 2, 3, -4], "positive"),
        ([10, 2, 3, 4], "outside"),
        ([-3, 2, 3, 4], "outside"),
        ([2, 20, 3, 4], "outside"),
    ],
)
def test_validate_box_errors(box, words):
    with pytest.raises(InputError, match=words):
        validate_box(box, (10, 10, 3))


# -- frame normalisation ------------------------------------------------------------------------------
def test_normalize_uint8_rgb_is_not_copied():
    frame = np.zeros((4, 5, 3), np.uint8)
    assert normalize_frame(frame) is frame
    view = np.zeros((4, 10, 3), np.uint8)[:, ::2]
    out = normalize_frame(view)
    assert out.flags.c_contiguous and out.shape == (4, 5, 3)


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1)])
def test_normalize_gray(shape):
    frame = np.arange(20, dtype=np.uint8).reshape(shape)
    out = normalize_frame(frame)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], frame.reshape(4, 5))


def test_normalize_rgba_drops_alpha():
    frame = np.random.default_rng(2).integers(0, 256, (4, 5, 4), dtype=np.uint8)
    out = normalize_frame(frame)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, frame[..., :3])


def test_normalize_uint16_scales_with_rounding():
    frame = np.array([0, 128, 129, 257, 32767, 65535], np.uint16).reshape(1, 6, 1).repeat(3, axis=2)
    out = normalize_frame(frame)
    assert out.dtype == np.uint8
    assert out[0, :, 0].tolist() == [0, 0, 1, 1, 127, 255]


@pytest.mark.parametrize(
    "frame, words",
    [
        (np.zeros((4, 5, 3), np.float32), "dtype"),
        (np.zeros((4, 5, 3), bool), "dtype"),
        (np.zeros((4, 5, 3), np.int16), "dtype"),
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((4, 5, 2), np.uint8), "shape"),
        (np.zeros((2, 4, 5, 3), np.uint8), "shape"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_normalize_refuses(frame, words):
    with pytest.raises(InputError, match=words):
        normalize_frame(frame)


def test_align_to_undoes_a_camera_pan_between_two_crops_and_leaves_unreliable_shifts_alone():
    from mixformerv2.geometry import align_to

    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8), (5, 5), 0)
    now, before = scene[40:152, 40:152], scene[43:155, 38:150]  # the camera moved by (-2, +3) px
    aligned = align_to(before, now)
    inner = (slice(6, -6), slice(6, -6))
    error = np.abs(aligned[inner].astype(int) - now[inner]).mean()
    assert error < 0.1 * np.abs(before[inner].astype(int) - now[inner]).mean()
    far = scene[0:112, 80:192]  # 40 px away: more than a quarter of the crop
    assert align_to(far, now, max_shift=0.25) is far
