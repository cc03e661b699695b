"""Frame sources (video file, image folder, camera) and output writers.

Every source yields contiguous uint8 RGB frames (H, W, 3); OpenCV's BGR order is converted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..fileio import atomic_write_text
from ..geometry import normalize_frame

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_FPS = 30.0


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers numerically: '2.jpg' < '10.jpg'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class FrameSource:
    """Iterable of RGB uint8 frames with ``fps``, ``num_frames`` (None if unknown) and ``name``."""

    name: str = ""
    fps: float = DEFAULT_FPS
    num_frames: int | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageFolderSource(FrameSource):
    """Image files (natural-sorted); each file is read when its frame is reached."""

    def __init__(self, files: Sequence[Path], name: str, fps: float = DEFAULT_FPS) -> None:
        self.files = list(files)
        self.name = name
        self.fps = fps
        self.num_frames = len(self.files)

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.files:
            yield read_image(path)


class _CaptureSource(FrameSource):
    """A cv2.VideoCapture read sequentially (no seeking: unreliable for many codecs).

    The first frame is decoded at construction so that unusable sources fail early.
    """

    def __init__(self, target: str | int, name: str, what: str) -> None:
        self.name, self._target, self._what = name, target, what
        self._cap = self._open()
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise InputError(f"{what} {name}: no decodable frame" + (" (empty video)" if what == "video" else ""))
        self._first: np.ndarray | None = first
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else DEFAULT_FPS

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self._target)
        if not cap.isOpened():
            cap.release()
            raise InputError(f"cannot open {self._what} {self.name}")
        return cap

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first is None:  # a second pass over a file starts again from the beginning
            if isinstance(self._target, int):
                raise InputError(f"camera {self.name} cannot be replayed")
            self._cap.release()
            self._cap = self._open()
        else:
            first, self._first = self._first, None
            yield _bgr_to_rgb(first)
        while True:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                return
            yield _bgr_to_rgb(frame)

    def close(self) -> None:
        self._cap.release()


class VideoFileSource(_CaptureSource):
    def __init__(self, path: Path) -> None:
        super().__init__(str(path), str(path), "video")
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.num_frames = count if count > 0 else None  # container's count; may be approximate


class CameraSource(_CaptureSource):
    def __init__(self, index: int) -> None:
        super().__init__(index, str(index), "camera")
        self.num_frames = None


def open_source(source: str | int | os.PathLike) -> FrameSource:
    """A video file, a folder of images, a single image, or a camera index (int or digits)."""
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        return CameraSource(int(source))
    path = Path(source)
    if not path.exists():
        if isinstance(source, str) and source.strip().isdigit():
            return CameraSource(int(source))
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            raise InputError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        return ImageFolderSource(sorted(files, key=lambda p: natural_key(p.name)), name=str(path))
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageFolderSource([path], name=str(path))
    return VideoFileSource(path)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One image file -> RGB uint8; 16-bit, gray and RGBA files are converted (see normalize_frame)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"{path}: cannot read image (missing, unsupported or corrupt file)")
    try:
        return _bgr_to_rgb(image)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """OpenCV BGR(A) / gray / 16-bit image -> RGB uint8 (alpha dropped, gray replicated)."""
    return cv2.cvtColor(normalize_frame(image), cv2.COLOR_BGR2RGB)


# -- outputs -----------------------------------------------------------------------------------------
def draw_box(
    frame_rgb: np.ndarray,
    box_xywh: Sequence[float],
    color: tuple[int, int, int] = (0, 255, 0),
    label: str | None = None,
) -> np.ndarray:
    """A copy of the frame with the (x, y, w, h) box and an optional label drawn on it."""
    out = normalize_frame(frame_rgb).copy()
    x, y, w, h = (float(v) for v in box_xywh)
    if not all(np.isfinite([x, y, w, h])):
        return out
    thickness = max(1, round(min(out.shape[:2]) / 240))
    p1 = (int(round(x)), int(round(y)))
    p2 = (int(round(x + w)), int(round(y + h)))
    cv2.rectangle(out, p1, p2, color, thickness)
    if label:
        scale = 0.5 * thickness
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = p1[1] - th - base - 2 if p1[1] - th - base - 2 >= 0 else p1[1]  # above the box if it fits
        cv2.rectangle(out, (p1[0], top), (p1[0] + tw + 2, top + th + base + 2), color, -1)
        cv2.putText(out, label, (p1[0] + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness)
    return out


class AnnotatedVideoWriter:
    """Writes RGB frames with a drawn box to an mp4 (fourcc mp4v)."""

    def __init__(
        self, path: str | os.PathLike, fps: float, frame_size: tuple[int, int], overwrite: bool = False
    ) -> None:
        self.path = Path(path)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))  # (width, height)
        _check_target(self.path, overwrite)
        fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else DEFAULT_FPS
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, self.frame_size)
        if not self._writer.isOpened():
            self._writer.release()
            raise InputError(f"{self.path}: cannot open a video writer (mp4v, {self.frame_size[0]}x{self.frame_size[1]})")

    def write(
        self, frame_rgb: np.ndarray, box_xywh: Sequence[float] | None = None, label: str | None = None
    ) -> None:
        frame = normalize_frame(frame_rgb)
        if (frame.shape[1], frame.shape[0]) != self.frame_size:
            raise InputError(f"frame size {frame.shape[1]}x{frame.shape[0]} != video size {self.frame_size[0]}x{self.frame_size[1]}")
        if box_xywh is not None:
            frame = draw_box(frame, box_xywh, label=label)
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> "AnnotatedVideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_boxes(path: str | os.PathLike, boxes: Sequence[Sequence[float]], overwrite: bool = False) -> None:
    """One ``x,y,w,h`` line per frame (4 decimals), written atomically (temp file + os.replace)."""
    path = Path(path)
    _check_target(path, overwrite)
    lines = []
    for i, box in enumerate(boxes):
        values = [float(v) for v in box]
        if len(values) != 4:
            raise InputError(f"box {i} has {len(values)} values, expected 4 (x, y, w, h)")
        lines.append(",".join(f"{v:.4f}" for v in values) + "\n")
    atomic_write_text(path, "".join(lines))


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; refusing to overwrite it (pass overwrite=True / --overwrite)")
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist")
