"""Synthetic sequences: determinism, labels that match the pixels, GOT-10k files, resume, clips."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mixformerv2.data.synthetic import (
    SKIMAGE_IMAGES,
    SyntheticConfig,
    demo_config,
    generate_sequence,
    texture_bank,
    write_clip,
    write_got10k,
)
from mixformerv2.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src"


def busy_config(**overrides) -> SyntheticConfig:
    """Small frames, every nuisance switched on."""
    values = dict(
        width=96, height=72, num_frames=(12, 12), target_size=(12.0, 24.0), clutter=(2, 4), occlusion_prob=1.0,
        distractor_prob=1.0, out_of_view_prob=1.0, scale_change_prob=1.0, aspect_change_prob=1.0, rotation_prob=1.0,
        holder_prob=1.0, drop_shadow_prob=1.0, motion_blur_prob=1.0, illumination_prob=1.0, shadow_prob=1.0,
        camera_motion_prob=1.0, camera_shake_prob=1.0, defocus_prob=1.0, vignette_prob=1.0, noise_prob=1.0,
        jpeg_prob=1.0, lookalike_clutter_prob=1.0, fast_motion_prob=1.0,
    )
    values.update(overrides)
    return SyntheticConfig(**values)


def small_plain(**overrides) -> SyntheticConfig:
    values = dict(width=96, height=72, num_frames=(8, 8), target_size=(14.0, 26.0), speed=(1.0, 3.0))
    values.update(overrides)
    return SyntheticConfig.plain(**values)


# ----------------------------------------------------------------------------- generation


def test_same_seed_same_sequence_and_different_seeds_differ():
    cfg = busy_config()
    a = generate_sequence(3, cfg)
    b = generate_sequence(3, cfg)
    assert a.frames.shape == (12, 72, 96, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames)
    assert np.array_equal(a.boxes, b.boxes)
    assert np.array_equal(a.absent, b.absent) and np.array_equal(a.cover, b.cover)
    c = generate_sequence(4, cfg)
    assert not np.array_equal(a.frames, c.frames)
    # tuple seeds (as used by write_got10k) are just as reproducible, and differ from the int seed
    assert np.array_equal(generate_sequence((3, 1), cfg).frames, generate_sequence((3, 1), cfg).frames)
    assert not np.array_equal(generate_sequence((3, 1), cfg).frames, a.frames)


def test_generation_leaves_global_random_state_alone():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    generate_sequence(0, busy_config(num_frames=(4, 4)))
    assert np.array_equal(np.random.random(3), expected)


@pytest.mark.parametrize("seed", range(6))
def test_labels_are_consistent(seed):
    cfg = busy_config(num_frames=(20, 20))
    seq = generate_sequence(seed, cfg)
    n = len(seq)
    assert seq.boxes.shape == (n, 4) and seq.boxes.dtype == np.float64
    assert seq.absent.shape == (n,) and seq.absent.dtype == bool
    assert seq.cover.shape == (n,)
    assert np.isfinite(seq.boxes).all()
    x, y, w, h = seq.boxes.T
    assert (w > 0).all() and (h > 0).all()
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= cfg.width).all() and (y + h <= cfg.height).all()
    assert not seq.absent[0] and seq.cover[0] >= 1
    assert ((seq.cover >= 0) & (seq.cover <= 8)).all()
    assert np.array_equal(seq.absent, seq.cover == 0)  # absent exactly when cover is 0
    assert seq.absent[seq.in_frame == 0].all()  # out of view => absent
    # absent frames repeat the last visible box (GOT-10k style)
    for t in np.flatnonzero(seq.absent):
        assert np.array_equal(seq.boxes[t], seq.boxes[t - 1])
    visible = ~seq.absent
    assert np.array_equal(seq.boxes[visible], seq.silhouette_boxes[visible])


@pytest.mark.parametrize("seed", range(5))
def test_box_matches_rendered_target(seed):
    bg = (0, 255, 0)
    cfg = small_plain(width=128, height=96, num_frames=(6, 6), background_color=bg, target_size=(16.0, 40.0),
                      scale_change_prob=1.0, rotation_prob=1.0)
    seq = generate_sequence(seed, cfg)
    for t in range(len(seq)):
        if seq.absent[t]:
            continue
        changed = np.abs(seq.frames[t].astype(int) - np.array(bg)).sum(2) > 60
        ys, xs = np.nonzero(changed)
        assert len(xs) > 20
        x, y, w, h = seq.boxes[t]
        inside = (xs >= x - 1) & (xs < x + w + 1) & (ys >= y - 1) & (ys < y + h + 1)
        assert inside.mean() > 0.97  # what was drawn lies in the box ...
        # ... and the box is tight around it
        drawn = np.array([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()], float)
        ix = max(0.0, min(x + w, drawn[0] + drawn[2]) - max(x, drawn[0]))
        iy = max(0.0, min(y + h, drawn[1] + drawn[3]) - max(y, drawn[1]))
        iou = ix * iy / (w * h + drawn[2] * drawn[3] - ix * iy)
        assert iou > 0.75, (t, seq.boxes[t], drawn)


def test_out_of_view_frames_are_absent_and_return():
    cfg = small_plain(num_frames=(40, 40), out_of_view_prob=1.0)
    found = 0
    for seed in range(4):
        seq = generate_sequence(seed, cfg)
        out = seq.in_frame == 0
        if out.any():
            found += 1
            assert seq.absent[out].all() and (seq.cover[out] == 0).all()
            assert not seq.absent[np.flatnonzero(out)[-1] + 1:].all()  # it comes back
    assert found >= 3


def test_full_and_partial_occlusion_give_cover_levels():
    full = small_plain(num_frames=(40, 40), occlusion_prob=1.0, full_occlusion_prob=1.0)
    hidden_in_frame = 0
    for seed in range(3):
        seq = generate_sequence(seed, full)
        hidden_in_frame += int((seq.absent & (seq.in_frame > 0.9)).sum())
    assert hidden_in_frame > 0  # fully occluded while inside the frame: absent, cover 0
    partial = small_plain(num_frames=(40, 40), occlusion_prob=1.0, full_occlusion_prob=0.0)
    levels = np.concatenate([generate_sequence(seed, partial).cover for seed in range(4)])
    assert ((levels >= 1) & (levels <= 7)).any()


def test_grayscale_sequences_are_gray():
    seq = generate_sequence(1, busy_config(num_frames=(3, 3), grayscale_prob=1.0))
    f = seq.frames.astype(int)
    assert np.abs(f[..., 0] - f[..., 1]).max() <= 3 and np.abs(f[..., 1] - f[..., 2]).max() <= 3


def test_other_frame_sizes_and_single_frame():
    seq = generate_sequence(0, SyntheticConfig(width=200, height=150, num_frames=(1, 1)))
    assert seq.frames.shape == (1, 150, 200, 3) and not seq.absent[0]


def test_frames_are_not_flat_colour():
    """Default sequences carry natural texture everywhere, not cartoon colour fields."""
    seq = generate_sequence(0, SyntheticConfig(num_frames=(2, 2)))
    gray = cv2.cvtColor(seq.frames[0], cv2.COLOR_RGB2GRAY).astype(np.float32)
    tiles = gray[: 240 // 16 * 16, : 320 // 16 * 16].reshape(15, 16, 20, 16).std(axis=(1, 3))
    assert (tiles > 2.0).mean() > 0.8


def test_config_validation():
    with pytest.raises(ConfigError):
        SyntheticConfig(occlusion_prob=1.5)
    with pytest.raises(ConfigError):
        SyntheticConfig(num_frames=(10, 5))
    with pytest.raises(ConfigError):
        SyntheticConfig(shapes={"dragon": 1.0})
    with pytest.raises(ConfigError):
        SyntheticConfig(width=100, height=80, target_size=(60.0, 70.0))
    with pytest.raises(ConfigError):
        SyntheticConfig.from_dict({"widht": 320})
    assert SyntheticConfig.from_dict({"num_frames": [5, 9]}).num_frames == (5, 9)
    with pytest.raises(ConfigError):
        generate_sequence(-1)
    d = demo_config()
    assert (d.width, d.height, d.num_frames) == (640, 480, (150, 150))


def test_texture_bank_is_bundled_and_offline():
    """Every image is read from the installed scikit-image package; no network is ever used."""
    code = (
        "import socket\n"
        "def deny(*a, **k): raise OSError('network disabled')\n"
        "socket.socket.connect = deny; socket.create_connection = deny; socket.getaddrinfo = deny\n"
        "from mixformerv2.data.synthetic import texture_bank\n"
        "b = texture_bank(); print(','.join(b.names)); print(sorted(b.silhouettes))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(SRC))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    names = out.stdout.splitlines()[0].split(",")
    assert set(names) == set(SKIMAGE_IMAGES) - {"horse"}
    assert "horse" in out.stdout.splitlines()[1]
    assert len(texture_bank()) == len(names)


def test_extra_materials_widen_the_training_material_and_leave_the_default_bank_alone():
    base, extra = texture_bank(), texture_bank(extra_materials=True)
    n = len(base)
    assert extra.names[:n] == base.names  # the held-out benchmark's material is unchanged
    added = extra.names[n:]
    assert sum(name.startswith("procedural") for name in added) == 24 and "grace_hopper" in added
    for p, q in ((extra.object_p, base.object_p), (extra.scene_p, base.scene_p)):
        assert p[n:].sum() == pytest.approx(1 / 3) and np.allclose(p[:n] * 1.5, q)
    assert all(extra.pyramids[i][0].dtype == np.uint8 for i in range(n, len(extra)))
    plain, wide = SyntheticConfig(num_frames=(3, 3)), SyntheticConfig(num_frames=(3, 3), extra_materials=True)
    assert SyntheticConfig.from_dict({"extra_materials": True}).extra_materials
    assert plain.fingerprint() != wide.fingerprint()
    assert SyntheticConfig().fingerprint() == "4195d667a9e2"  # as in folders written before the option
    changed = [not np.array_equal(generate_sequence(s, plain).frames[0], generate_sequence(s, wide).frames[0])
               for s in range(3)]
    assert any(changed)


def test_camouflage_gives_the_target_its_background_texture():
    """camouflage_prob: the target is cut from its own background, so it looks like its
    surroundings; the motion and the boxes stay as they were, and the option enters the fingerprint
    (the default one, unchanged, is asserted above)."""
    def sequences(prob):
        cfg = SyntheticConfig.plain(width=160, height=120, num_frames=(2, 2), target_size=(30.0, 40.0),
                                    flat_background=False, backgrounds={"photo": 1.0},
                                    shapes={"ellipse": 1.0, "rounded_rect": 1.0}, camouflage_prob=prob)
        return [generate_sequence(seed, cfg) for seed in range(8)]

    def copy_nearby(seq) -> float:
        """How well the target's core matches some other place of the frame (normalised
        correlation; the places overlapping the target are left out)."""
        frame = seq.frames[0].astype(np.float32)
        x, y, w, h = seq.boxes[0].round().astype(int)
        core = frame[y + h // 3:y + 2 * h // 3, x + w // 3:x + 2 * w // 3]
        score = cv2.matchTemplate(frame, core, cv2.TM_CCOEFF_NORMED)
        score[max(0, y - core.shape[0]):y + h, max(0, x - core.shape[1]):x + w] = -1.0
        return float(score.max())

    plain, camo = sequences(0.0), sequences(1.0)
    assert all(s.info.get("camouflage") for s in camo) and not any("camouflage" in s.info for s in plain)
    for a, b in zip(plain, camo):
        np.testing.assert_array_equal(a.boxes, b.boxes)
    assert np.median([copy_nearby(s) for s in camo]) > 0.9 > np.median([copy_nearby(s) for s in plain])
    assert SyntheticConfig(camouflage_prob=0.5).fingerprint() != SyntheticConfig().fingerprint()
    with pytest.raises(ConfigError, match="camouflage_prob"):
        SyntheticConfig(camouflage_prob=1.5)


# ----------------------------------------------------------------------------- GOT-10k writer


def _expected_files(n: int) -> set[str]:
    return {f"{j:08d}.jpg" for j in range(1, n + 1)} | {"groundtruth.txt", "absence.label", "cover.label",
                                                        "meta_info.ini"}


def test_write_got10k_layout(tmp_path):
    cfg = busy_config(num_frames=(5, 7), camera_motion_prob=0.5)
    root = write_got10k(tmp_path / "train", 3, seed=7, config=cfg, progress=False)
    assert root == tmp_path / "train"
    names = (root / "list.txt").read_text().splitlines()
    assert names == ["GOT-10k_Train_000001", "GOT-10k_Train_000002", "GOT-10k_Train_000003"]
    assert sorted(p.name for p in root.iterdir()) == ["GOT-10k_Train_000001", "GOT-10k_Train_000002",
                                                      "GOT-10k_Train_000003", "list.txt"]
    for i, name in enumerate(names, start=1):
        folder = root / name
        seq = generate_sequence((7, i), cfg)  # any sequence can be remade from (seed, index)
        n = len(seq)
        assert {p.name for p in folder.iterdir()} == _expected_files(n)
        gt = (folder / "groundtruth.txt").read_text().splitlines()
        assert len(gt) == n
        assert all(re.fullmatch(r"-?\d+\.\d{4},-?\d+\.\d{4},\d+\.\d{4},\d+\.\d{4}", line) for line in gt)
        assert np.allclose(np.array([[float(v) for v in line.split(",")] for line in gt]), seq.boxes, atol=1e-4)
        absence = [int(v) for v in (folder / "absence.label").read_text().split()]
        cover = [int(v) for v in (folder / "cover.label").read_text().split()]
        assert absence == seq.absent.astype(int).tolist() and cover == seq.cover.tolist()
        meta = (folder / "meta_info.ini").read_text().splitlines()
        assert meta[0] == "[METAINFO]" and meta[5] == "object_class: synthetic"
        assert meta[-1] == f"resolution: ({cfg.width}, {cfg.height})"
        for j in (1, n):
            image = cv2.imread(str(folder / f"{j:08d}.jpg"))
            assert image is not None and image.shape == (cfg.height, cfg.width, 3)
            # quality-90 JPEG of the generated frame
            assert np.abs(image[..., ::-1].astype(int) - seq.frames[j - 1]).mean() < 6


def test_written_colours_are_rgb_not_bgr(tmp_path):
    from mixformerv2.tracking.video import read_image

    cfg = small_plain(num_frames=(2, 2), background_color=(210, 40, 20))
    root = write_got10k(tmp_path, 1, config=cfg, progress=False)
    frame = read_image(root / "GOT-10k_Train_000001" / "00000001.jpg")  # RGB, as every reader sees it
    corners = np.stack([frame[:4, :4], frame[:4, -4:], frame[-4:, :4], frame[-4:, -4:]]).reshape(-1, 3)
    # the target may sit in one corner; the background colour must dominate the others
    close = np.abs(corners.astype(int) - (210, 40, 20)).max(1) < 12
    assert close.mean() > 0.7


def test_resume_skips_complete_and_replaces_half_written(tmp_path):
    cfg = small_plain(num_frames=(6, 6))
    root = write_got10k(tmp_path, 3, seed=1, config=cfg, progress=False)
    first = root / "GOT-10k_Train_000001"
    second = root / "GOT-10k_Train_000002"
    kept = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    original_gt = (second / "groundtruth.txt").read_text()
    original_jpg = (second / "00000006.jpg").read_bytes()
    # a half-written sequence (as left by a killed non-atomic writer) and a stale temp folder
    (second / "00000006.jpg").unlink()
    (second / "cover.label").write_text("8\n8\n")
    stale = root / ".tmp_GOT-10k_Train_000003_999999999"
    stale.mkdir()
    (stale / "00000001.jpg").write_bytes(b"")

    write_got10k(root, 3, seed=1, config=cfg, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == kept  # untouched
    assert {p.name for p in second.iterdir()} == _expected_files(6)
    assert (second / "groundtruth.txt").read_text() == original_gt
    assert (second / "00000006.jpg").read_bytes() == original_jpg
    assert len((second / "cover.label").read_text().split()) == 6
    assert not stale.exists()
    assert not list(root.glob(".tmp_*"))

    # a different configuration is not mistaken for finished work
    other = small_plain(num_frames=(4, 4))
    write_got10k(root, 1, seed=1, config=other, progress=False)
    assert len(list(first.glob("*.jpg"))) == 4
    assert (root / "list.txt").read_text().split() == ["GOT-10k_Train_000001"]


def test_parallel_workers_write_the_same_sequences(tmp_path):
    cfg = small_plain(num_frames=(4, 4))
    write_got10k(tmp_path / "a", 2, seed=5, config=cfg, workers=2, progress=False)
    write_got10k(tmp_path / "b", 2, seed=5, config=cfg, workers=1, progress=False)
    for i in (1, 2):
        name = f"GOT-10k_Train_{i:06d}"
        for f in ("groundtruth.txt", "cover.label", "00000004.jpg"):
            assert (tmp_path / "a" / name / f).read_bytes() == (tmp_path / "b" / name / f).read_bytes()


def test_other_split_names_do_not_repeat_training_sequences(tmp_path):
    cfg = small_plain(num_frames=(3, 3))
    write_got10k(tmp_path / "val", 1, config=cfg, split_name="val", progress=False)
    assert (tmp_path / "val" / "list.txt").read_text().split() == ["GOT-10k_Val_000001"]
    val = cv2.imread(str(tmp_path / "val" / "GOT-10k_Val_000001" / "00000001.jpg"))
    train = generate_sequence((0, 1), cfg).frames[0][..., ::-1]
    assert np.abs(val.astype(int) - train).mean() > 3


# ----------------------------------------------------------------------------- video clip


def test_write_clip_makes_a_readable_mp4(tmp_path):
    cfg = busy_config(width=128, height=96, num_frames=(12, 12))
    path = tmp_path / "clip.mp4"
    boxes, absent = write_clip(path, 2, cfg)
    assert boxes.shape == (12, 4) and absent.shape == (12,) and absent.dtype == bool
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    count = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (96, 128, 3)
        count += 1
    cap.release()
    assert count == 12
    seq = generate_sequence(2, cfg)
    assert np.array_equal(boxes, seq.boxes) and np.array_equal(absent, seq.absent)
