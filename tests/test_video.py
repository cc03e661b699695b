"""Frame sources and writers (tracking/video.py), on small files generated with OpenCV."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from mixformerv2.errors import InputError
from mixformerv2.tracking.video import (
    AnnotatedVideoWriter,
    ImageFolderSource,
    draw_box,
    natural_key,
    open_source,
    write_boxes,
)

REAL_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "box.mp4"
RED_BGR = (0, 0, 255)


def _write_video(path: Path, fourcc: str, n: int = 10, size=(64, 48), fps: float = 12.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened()
    for _ in range(n):
        writer.write(np.full((size[1], size[0], 3), RED_BGR, np.uint8))
    writer.release()


def _is_red(frame: np.ndarray) -> bool:
    r, g, b = frame[frame.shape[0] // 2, frame.shape[1] // 2].astype(int)
    return r > 200 and g < 50 and b < 50


@pytest.mark.parametrize("name, fourcc", [("clip.mp4", "mp4v"), ("clip.avi", "MJPG")])
def test_video_file_frames_are_rgb(tmp_path, name, fourcc):
    path = tmp_path / name
    _write_video(path, fourcc)
    with open_source(path) as source:
        assert source.num_frames == 10
        assert source.fps == pytest.approx(12.0)
        assert str(path) in source.name
        frames = list(source)
    assert len(frames) == 10
    for f in frames:
        assert f.shape == (48, 64, 3) and f.dtype == np.uint8 and f.flags.c_contiguous
        assert _is_red(f)


def test_video_file_can_be_iterated_twice(tmp_path):
    path = tmp_path / "clip.mp4"
    _write_video(path, "mp4v", n=4)
    with open_source(str(path)) as source:
        assert len(list(source)) == 4
        assert len(list(source)) == 4


def _write_images(folder: Path, names) -> None:
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        image = np.full((8, 6, 3), 0, np.uint8)
        image[0, 0] = (0, 0, (i * 10) % 256)  # BGR: index in the red channel
        assert cv2.imwrite(str(folder / name), image)


def test_folder_natural_order_and_rgb(tmp_path):
    names = ["10.png", "2.png", "1.png", "frame_9.png", "frame_10.png", "b.png"]
    _write_images(tmp_path / "seq", names)
    (tmp_path / "seq" / "notes.txt").write_text("not an image")
    with open_source(tmp_path / "seq") as source:
        assert isinstance(source, ImageFolderSource)
        assert source.num_frames == len(names)
        assert source.fps == 30.0
        got = [p.name for p in source.files]
        frames = list(source)
    assert got == ["1.png", "2.png", "10.png", "b.png", "frame_9.png", "frame_10.png"]
    # each frame's red value identifies the file it came from
    reds = [int(f[0, 0, 0]) for f in frames]
    assert reds == [names.index(n) * 10 for n in got]
    assert all(f[0, 0, 2] == 0 for f in frames)


def test_natural_key():
    assert sorted(["img10.jpg", "img2.jpg", "IMG1.jpg"], key=natural_key) == ["IMG1.jpg", "img2.jpg", "img10.jpg"]


def test_corrupt_image_names_the_file(tmp_path):
    _write_images(tmp_path, ["1.jpg", "2.jpg"])
    (tmp_path / "3.jpg").write_bytes(b"this is no jpeg" * 10)
    source = open_source(tmp_path)
    frames = iter(source)
    next(frames), next(frames)
    with pytest.raises(InputError, match="3.jpg"):
        next(frames)


def test_special_images_are_converted(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    gray16 = np.full((5, 7), 65535, np.uint16)
    bgr16 = np.zeros((5, 7, 3), np.uint16)
    bgr16[..., 2] = 65535  # red in BGR order
    gray8 = np.full((5, 7), 77, np.uint8)
    bgra = np.zeros((5, 7, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 255, 10  # blue, nearly transparent
    for name, image in [("1.png", gray16), ("2.png", bgr16), ("3.png", gray8), ("4.png", bgra)]:
        assert cv2.imwrite(str(folder / name), image)
    assert cv2.imread(str(folder / "2.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    frames = list(open_source(folder))
    for f in frames:
        assert f.shape == (5, 7, 3) and f.dtype == np.uint8 and f.flags.c_contiguous
    assert (frames[0] == 255).all()
    assert (frames[1][..., 0] == 255).all() and not frames[1][..., 1:].any()
    assert (frames[2] == 77).all()
    assert (frames[3][..., 2] == 255).all() and not frames[3][..., :2].any()


def test_single_image_file(tmp_path):
    _write_images(tmp_path, ["a.bmp"])
    with open_source(tmp_path / "a.bmp") as source:
        assert source.num_frames == 1
        assert len(list(source)) == 1


def test_empty_folder_missing_path_and_fake_video(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        open_source(tmp_path / "empty")
    with pytest.raises(InputError, match="nope"):
        open_source(tmp_path / "nope.mp4")
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello, I am not a video\n" * 20)
    with pytest.raises(InputError, match="fake.mp4"):
        open_source(fake)


def test_video_without_frames(tmp_path):
    path = tmp_path / "empty.avi"
    _write_video(path, "MJPG", n=0)  # a valid container holding no frame
    with pytest.raises(InputError, match=r"empty\.avi.*empty video"):
        open_source(path)


def test_unopenable_camera():
    with pytest.raises(InputError, match="camera"):
        open_source(97)


@pytest.mark.skipif(not REAL_VIDEO.is_file(), reason="shared sample video not present")
def test_real_clip_first_frames():
    with open_source(REAL_VIDEO) as source:
        assert source.num_frames == 456
        assert source.fps == pytest.approx(30, abs=0.1)
        frames = list(itertools.islice(source, 3))
    assert len(frames) == 3
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames)
    assert frames[0].std() > 5  # real content, not a blank frame


# -- outputs ---------------------------------------------------------------------------------------------
def test_draw_box_returns_copy():
    frame = np.zeros((48, 64, 3), np.uint8)
    out = draw_box(frame, (10, 20, 40, 25), label="0.93")
    assert out is not frame and not frame.any()
    assert (out[20, 30] == (0, 255, 0)).all()  # top edge in the default green
    assert (out[45, 30] == (0, 255, 0)).all()  # bottom edge (y + h)
    assert not out[32, 30].any()  # inside stays untouched
    assert out[:20].any()  # the label sits above the box


def test_annotated_writer(tmp_path):
    path = tmp_path / "out.mp4"
    with AnnotatedVideoWriter(path, 10, (64, 48)) as writer:
        for i in range(5):
            writer.write(np.full((48, 64, 3), (255, 0, 0), np.uint8), (5 + i, 5, 20, 20), label=f"{i}")
        with pytest.raises(InputError, match="size"):
            writer.write(np.zeros((10, 10, 3), np.uint8), None)
    frames = list(open_source(path))
    assert len(frames) == 5 and _is_red(frames[0])
    with pytest.raises(InputError, match="overwrite"):
        AnnotatedVideoWriter(path, 10, (64, 48))
    AnnotatedVideoWriter(path, 10, (64, 48), overwrite=True).close()
    with pytest.raises(InputError):
        AnnotatedVideoWriter(tmp_path / "missing" / "out.mp4", 10, (64, 48))


def test_write_boxes(tmp_path):
    path = tmp_path / "boxes.txt"
    write_boxes(path, [(1, 2, 3, 4), np.array([0.123456, -1.5, 10.0, 20.25])])
    assert path.read_text() == "1.0000,2.0000,3.0000,4.0000\n0.1235,-1.5000,10.0000,20.2500\n"
    with pytest.raises(InputError, match="overwrite"):
        write_boxes(path, [(0, 0, 1, 1)])
    assert path.read_text().startswith("1.0000")  # untouched
    write_boxes(path, [(0, 0, 1, 1)], overwrite=True)
    assert path.read_text() == "0.0000,0.0000,1.0000,1.0000\n"
    with pytest.raises(InputError, match="expected 4"):
        write_boxes(tmp_path / "bad.txt", [(0, 0, 1)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boxes.txt"]  # no temp files left behind
