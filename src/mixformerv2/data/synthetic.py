"""Procedural tracking sequences built from natural image material, written in GOT-10k layout.

Nobody can download a tracking dataset here, so the default tracker is trained on sequences
made up on the fly.  To teach something that carries over to real footage, every pixel comes
from real photographs: the images bundled *inside* the scikit-image wheel (read straight from
the package's ``data`` folder, so nothing is ever fetched from the network).  Random crops,
rescales, rotations and colour changes of these photos give backgrounds, clutter, targets,
distractors and occluders; on top come the nuisances of real video: motion blur, lighting drift
and moving shadows, camera pan / zoom / shake, defocus, sensor noise, JPEG artefacts, small
targets, look-alike distractors, occlusion and the target leaving the frame.

Public API:

* :class:`SyntheticConfig` — what to generate (sizes, ranges, probabilities of each nuisance);
  :func:`demo_config` — a hand-held object over a cluttered table (640x480, 150 frames).
* :func:`generate_sequence` — one sequence in memory, fully determined by its seed.
* :func:`write_got10k` — many sequences in GOT-10k's on-disk layout (parallel, resumable,
  atomic per sequence).
* :func:`write_clip` — one sequence as an .mp4 plus its ground truth.

Labels follow GOT-10k: the box is the tight box of the target's silhouette *before* occlusion,
clipped to the frame; ``cover`` is the visible fraction of the silhouette (occlusion and
truncation by the frame edge) in eighths, 0 meaning absent; ``absent`` marks frames where the
target is out of the frame or (practically) fully occluded, and those frames repeat the last
visible box, as GOT-10k does.
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import hashlib
import importlib.util
import json
import math
import os
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence as Seq

import cv2
import numpy as np

from ..errors import ConfigError, InputError

__all__ = [
    "SyntheticConfig",
    "SyntheticSequence",
    "TextureBank",
    "SKIMAGE_IMAGES",
    "demo_config",
    "generate_sequence",
    "texture_bank",
    "write_clip",
    "write_got10k",
]

# Visible fraction below which a frame counts as absent (fully occluded / out of view).
ABSENT_FRACTION = 0.04


# ----------------------------------------------------------------------------- configuration


def _default_shapes() -> dict[str, float]:
    return {"ellipse": 1.0, "blob": 1.5, "rounded_rect": 1.2, "polygon": 0.8, "person": 1.5, "horse": 0.3}


def _default_backgrounds() -> dict[str, float]:
    return {"photo": 1.2, "surface": 0.6, "split": 0.8, "table": 0.8}


def _default_motions() -> dict[str, float]:
    return {"smooth": 1.0, "jerky": 0.6}


SHAPES = ("ellipse", "blob", "rounded_rect", "polygon", "person", "horse")
BACKGROUNDS = ("photo", "surface", "split", "table")
MOTIONS = ("smooth", "jerky")


# settings added after folders were written: left out of the fingerprint while off
_ADDED_LATER = ("extra_materials", "camouflage_prob")


@dataclass
class SyntheticConfig:
    """What :func:`generate_sequence` makes.  Sizes are pixels, speeds pixels per frame.

    Every ``*_prob`` is the chance that a sequence shows that effect.  ``target_size`` is the
    square root of the first-frame box area; ``max_scale_change`` / ``max_aspect_change`` bound
    the factor by which size / aspect ratio may drift over a sequence.  ``shapes``,
    ``backgrounds`` and ``motions`` are relative weights of the kinds listed in ``SHAPES``,
    ``BACKGROUNDS`` and ``MOTIONS`` (people always walk).  ``flat_background`` replaces the
    background by ``background_color`` (RGB) without clutter, for tests.  ``extra_materials``
    adds procedural textures and the remaining bundled pictures to the material, for training
    diversity; the held-out benchmark keeps the default material.  ``camouflage_prob`` (off by
    default) re-textures that share of (non-person) targets with a patch of their own background
    cut near where they start, the hardest look-alike case.
    """

    width: int = 320
    height: int = 240
    num_frames: tuple[int, int] = (60, 120)
    target_size: tuple[float, float] = (12.0, 96.0)
    small_target_prob: float = 0.2
    speed: tuple[float, float] = (0.2, 7.0)
    fast_motion_prob: float = 0.1
    shapes: dict[str, float] = field(default_factory=_default_shapes)
    motions: dict[str, float] = field(default_factory=_default_motions)
    backgrounds: dict[str, float] = field(default_factory=_default_backgrounds)
    clutter: tuple[int, int] = (3, 14)
    lookalike_clutter_prob: float = 0.3
    occlusion_prob: float = 0.35
    full_occlusion_prob: float = 0.4
    static_occluder_prob: float = 0.3
    distractor_prob: float = 0.4
    max_distractors: int = 3
    same_texture_prob: float = 0.4
    out_of_view_prob: float = 0.12
    scale_change_prob: float = 0.5
    max_scale_change: float = 2.0
    aspect_change_prob: float = 0.3
    max_aspect_change: float = 1.5
    rotation_prob: float = 0.3
    max_rotation: float = 20.0
    holder_prob: float = 0.1
    drop_shadow_prob: float = 0.5
    motion_blur_prob: float = 0.6
    illumination_prob: float = 0.5
    shadow_prob: float = 0.4
    camera_motion_prob: float = 0.35
    camera_shake_prob: float = 0.2
    defocus_prob: float = 0.15
    vignette_prob: float = 0.3
    noise_prob: float = 0.8
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (25, 85)
    grayscale_prob: float = 0.05
    camouflage_prob: float = 0.0
    extra_materials: bool = False
    flat_background: bool = False
    background_color: tuple[int, int, int] = (128, 128, 128)

    def __post_init__(self) -> None:
        for name in ("num_frames", "target_size", "speed", "clutter", "jpeg_quality", "background_color"):
            value = getattr(self, name)
            try:
                setattr(self, name, tuple(value))
            except TypeError:
                raise ConfigError(f"SyntheticConfig.{name} must be a pair, got {value!r}") from None
        for name in ("shapes", "motions", "backgrounds"):
            setattr(self, name, dict(getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        def fail(message: str) -> None:
            raise ConfigError(f"SyntheticConfig: {message}")

        if not (32 <= self.width <= 8192 and 32 <= self.height <= 8192):
            fail(f"frame size must be 32..8192 pixels, got {self.width}x{self.height}")
        for name in ("num_frames", "target_size", "speed", "clutter", "jpeg_quality"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or not all(np.isfinite(v) for v in lo_hi) or lo_hi[0] > lo_hi[1] or lo_hi[0] < 0:
                fail(f"{name} must be a (low, high) pair with 0 <= low <= high, got {lo_hi!r}")
        if self.num_frames[0] < 1:
            fail("num_frames must be at least 1")
        if self.target_size[0] < 4:
            fail("target_size must be at least 4 pixels")
        if self.target_size[0] > 0.7 * min(self.width, self.height):
            fail(f"target_size {self.target_size} too large for a {self.width}x{self.height} frame")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            fail(f"jpeg_quality must lie in 1..100, got {self.jpeg_quality}")
        if len(self.background_color) != 3 or not all(0 <= c <= 255 for c in self.background_color):
            fail(f"background_color must be three values in 0..255, got {self.background_color}")
        for name, allowed in (("shapes", SHAPES), ("motions", MOTIONS), ("backgrounds", BACKGROUNDS)):
            weights = getattr(self, name)
            unknown = set(weights) - set(allowed)
            if unknown:
                fail(f"unknown {name} {sorted(unknown)}; choose from {list(allowed)}")
            if any(w < 0 or not np.isfinite(w) for w in weights.values()) or sum(weights.values()) <= 0:
                fail(f"{name} weights must be non-negative with a positive sum, got {weights}")
        for f in dataclasses.fields(self):
            if f.name.endswith("_prob"):
                p = getattr(self, f.name)
                if not 0.0 <= p <= 1.0:
                    fail(f"{f.name} must lie in [0, 1], got {p}")
        if self.max_distractors < 1:
            fail("max_distractors must be at least 1")
        if self.max_scale_change < 1 or self.max_aspect_change < 1:
            fail("max_scale_change and max_aspect_change must be >= 1")
        if not 0 <= self.max_rotation <= 180:
            fail("max_rotation must lie in [0, 180] degrees")

    @classmethod
    def from_dict(cls, values: dict) -> "SyntheticConfig":
        """Build from a plain mapping (e.g. YAML); unknown keys raise ConfigError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ConfigError(f"SyntheticConfig: unknown keys {sorted(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Short stable hash of the settings (stored in meta_info.ini, checked on resume)."""
        values = self.to_dict()
        for key in _ADDED_LATER:  # while they are off, folders written before them stay valid
            if not values[key]:
                del values[key]
        text = json.dumps(values, sort_keys=True, default=list)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    @classmethod
    def plain(cls, **overrides) -> "SyntheticConfig":
        """No nuisances at all: one textured target on a flat background (tests, debugging)."""
        values = {f.name: 0.0 for f in dataclasses.fields(cls) if f.name.endswith("_prob")}
        values.update(flat_background=True, clutter=(0, 0))
        values.update(overrides)
        return cls(**values)


def demo_config() -> SyntheticConfig:
    """A hand-held textured object moved over a cluttered textured table, with a look-alike
    distractor and a short occlusion; 640x480, 150 frames."""
    return SyntheticConfig(
        width=640,
        height=480,
        num_frames=(150, 150),
        target_size=(70.0, 95.0),
        small_target_prob=0.0,
        speed=(3.0, 7.0),
        fast_motion_prob=0.0,
        shapes={"blob": 1.0, "rounded_rect": 1.0, "ellipse": 0.6, "polygon": 0.6},
        motions={"smooth": 1.0, "jerky": 1.0},
        backgrounds={"table": 1.0},
        clutter=(5, 8),
        lookalike_clutter_prob=0.0,
        occlusion_prob=1.0,
        full_occlusion_prob=0.5,
        static_occluder_prob=0.0,
        distractor_prob=1.0,
        max_distractors=1,
        same_texture_prob=0.0,
        out_of_view_prob=0.0,
        scale_change_prob=1.0,
        max_scale_change=1.4,
        aspect_change_prob=0.6,
        max_aspect_change=1.3,
        rotation_prob=1.0,
        max_rotation=25.0,
        holder_prob=1.0,
        drop_shadow_prob=1.0,
        motion_blur_prob=1.0,
        illumination_prob=1.0,
        shadow_prob=0.6,
        camera_motion_prob=0.0,
        camera_shake_prob=1.0,
        defocus_prob=0.0,
        vignette_prob=0.5,
        noise_prob=1.0,
        jpeg_prob=0.0,
        grayscale_prob=0.0,
    )


# ----------------------------------------------------------------------------- result


@dataclass
class SyntheticSequence:
    """One generated sequence.

    ``frames`` (N, H, W, 3) uint8 RGB; ``boxes`` (N, 4) float64 x, y, w, h (absent frames
    repeat the last visible box); ``absent`` (N,) bool; ``cover`` (N,) int 0..8 (visible eighths,
    0 exactly when absent); ``visible_fraction`` (N,) the measured visible share of the
    silhouette; ``in_frame`` (N,) the share of the silhouette inside the frame (0 = out of view);
    ``silhouette_boxes`` (N, 4) the tight box of the un-occluded silhouette clipped to the frame
    (NaN where no part of it is in the frame); ``info`` the scenario drawn for this seed.
    """

    frames: np.ndarray
    boxes: np.ndarray
    absent: np.ndarray
    cover: np.ndarray
    visible_fraction: np.ndarray
    in_frame: np.ndarray
    silhouette_boxes: np.ndarray
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def visible(self) -> np.ndarray:
        return ~self.absent


# ----------------------------------------------------------------------------- image material

# (name of the skimage.data loader, file inside skimage/data, weight as scene, weight as object)
_SKIMAGE_SOURCES: tuple[tuple[str, str, float, float], ...] = (
    ("astronaut", "astronaut.png", 0.8, 1.0),
    ("camera", "camera.png", 1.0, 0.6),
    ("coffee", "coffee.png", 1.2, 1.0),
    ("chelsea", "chelsea.png", 0.6, 1.0),
    ("rocket", "rocket.jpg", 0.8, 0.6),
    ("stereo_motorcycle", "motorcycle_left.png", 1.5, 1.0),
    ("immunohistochemistry", "ihc.png", 0.3, 0.8),
    ("hubble_deep_field", "hubble_deep_field.jpg", 0.05, 0.3),
    ("retina", "retina.jpg", 0.1, 0.5),
    ("logo", "logo.png", 0.0, 0.4),
    ("brick", "brick.png", 1.0, 0.8),
    ("grass", "grass.png", 1.0, 0.6),
    ("gravel", "gravel.png", 1.0, 0.6),
    ("moon", "moon.png", 0.4, 0.4),
    ("coins", "coins.png", 0.3, 0.6),
    ("page", "page.png", 0.4, 0.5),
    ("text", "text.png", 0.6, 0.5),
    ("cell", "cell.png", 0.2, 0.3),
)
# materials that look like a table top / floor seen from above (the "table" background)
_TABLE_WEIGHTS = {"coffee": 2.0, "text": 0.8, "page": 0.6, "gravel": 0.5, "moon": 0.5, "brick": 0.3, "chelsea": 0.3,
                  "cell": 0.3, "grass": 0.2, "camera": 0.2}
#: skimage.data images used as material (all bundled in the scikit-image wheel).
SKIMAGE_IMAGES: tuple[str, ...] = tuple(s[0] for s in _SKIMAGE_SOURCES) + ("horse",)

_MAX_SIDE = 768  # larger photos are downscaled once at load time


def _skimage_data_dir() -> Path | None:
    """skimage's bundled ``data`` folder, found without importing skimage (never networked)."""
    try:
        spec = importlib.util.find_spec("skimage")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "data"
        if folder.is_dir():
            return folder
    return None


def _read_rgb(path: Path) -> np.ndarray | None:
    """An image file as uint8 RGB (H, W, 3), or (H, W) when it is gray; None if unreadable."""
    image = None
    try:  # Pillow ships with scikit-image and, unlike libpng via OpenCV, reads page.png silently
        from PIL import Image

        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    except Exception:  # noqa: BLE001 - any failure: fall back to OpenCV
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is not None:
            image = raw[..., :3][..., ::-1] if raw.ndim == 3 else raw
    if image is None:
        return None
    if image.dtype != np.uint8:
        image = (image.astype(np.float64) * (255.0 / max(1, image.max()))).astype(np.uint8)
    if image.ndim == 3 and np.abs(image.astype(np.int16) - image[..., :1]).max() < 3:
        image = image[..., 0]
    return np.ascontiguousarray(image)


def _fit_max_side(image: np.ndarray) -> np.ndarray:
    """``image`` downscaled so that its longer side is at most ``_MAX_SIDE``, contiguous."""
    scale = _MAX_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def _procedural_textures() -> list[np.ndarray]:
    """Fractal-noise stand-ins, used only when no scikit-image data can be found."""
    rng = np.random.default_rng(20240601)
    textures = []
    for _ in range(8):
        acc = _fractal_noise(rng, 256, 1.6)
        acc = (acc - acc.min()) / max(1e-6, acc.max() - acc.min())
        textures.append((acc * 255).astype(np.uint8))
    return textures


def _fractal_noise(rng: np.random.Generator, side: int, decay: float) -> np.ndarray:
    """(side, side) float32 sum of six upsampled noise octaves, octave k weighted by decay**-k."""
    acc = np.zeros((side, side), np.float32)
    for octave in range(6):
        n = 2 ** (octave + 2)
        layer = rng.standard_normal((n, n)).astype(np.float32)
        acc += cv2.resize(layer, (side, side), interpolation=cv2.INTER_CUBIC) / decay**octave
    return acc


class TextureBank:
    """Natural image material: samples random crops / rescales / rotations / colourings."""

    def __init__(self, images: list[np.ndarray], names: list[str], scene_w: list[float], object_w: list[float],
                 silhouettes: dict[str, np.ndarray] | None = None):
        if not images:
            raise InputError("TextureBank needs at least one image")
        self.names = list(names)
        self.pyramids: list[list[np.ndarray]] = []
        for image in images:
            levels = [image]
            while min(levels[-1].shape[:2]) >= 64 and len(levels) < 5:
                levels.append(cv2.pyrDown(levels[-1]))
            self.pyramids.append(levels)
        self.gray = [im.ndim == 2 for im in images]
        self.scene_p = self._norm(scene_w)
        self.object_p = self._norm(object_w)
        self.photo_p = self._norm([w if not g else 0.0 for w, g in zip(scene_w, self.gray)]
                                  if any(not g for g in self.gray) else scene_w)
        self.table_p = self._norm([_TABLE_WEIGHTS.get(n, 0.0) for n in self.names])
        self.silhouettes = dict(silhouettes or {})

    @staticmethod
    def _norm(weights: Seq[float]) -> np.ndarray:
        w = np.asarray(weights, dtype=np.float64)
        if w.sum() <= 0:
            w = np.ones_like(w)
        return w / w.sum()

    def __len__(self) -> int:
        return len(self.pyramids)

    def pick(self, rng: np.random.Generator, role: str = "object") -> int:
        p = {"object": self.object_p, "scene": self.scene_p, "photo": self.photo_p, "table": self.table_p}[role]
        return int(rng.choice(len(p), p=p))

    def sample(self, rng: np.random.Generator, h: int, w: int, *, role: str = "object", index: int | None = None,
               zoom: float | None = None, max_rotation: float = math.pi, colour: float = 1.0) -> np.ndarray:
        """A (h, w, 3) float32 RGB patch in [0, 255] (approximately).

        ``zoom`` = output pixels per source pixel (random when None); ``max_rotation`` in
        radians; ``colour`` scales the strength of the colour jitter (gray images are always
        given a random duotone colouring).
        """
        h, w = max(1, int(h)), max(1, int(w))
        if index is None:
            index = self.pick(rng, role)
        pyramid = self.pyramids[index]
        if zoom is None:
            zoom = float(np.exp(rng.uniform(np.log(0.35), np.log(1.5))))
        level = int(np.clip(np.floor(np.log2(1.0 / zoom)), 0, len(pyramid) - 1)) if zoom < 1 else 0
        image = pyramid[level]
        zk = zoom * 2**level
        ih, iw = image.shape[:2]
        angle = rng.uniform(-max_rotation, max_rotation)
        flip = -1.0 if rng.random() < 0.5 else 1.0
        reg_w, reg_h = w / zk, h / zk
        cx = rng.uniform(min(reg_w / 2, iw / 2), max(iw - reg_w / 2, iw / 2))
        cy = rng.uniform(min(reg_h / 2, ih / 2), max(ih - reg_h / 2, ih / 2))
        c, s = math.cos(angle), math.sin(angle)
        lin = np.array([[c * flip, -s], [s * flip, c]]) / zk
        offset = np.array([cx, cy]) - lin @ np.array([(w - 1) / 2, (h - 1) / 2])
        m = np.hstack([lin, offset[:, None]])
        out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
        if out.ndim == 2 or (colour > 0 and rng.random() < 0.12 * colour):
            gray = out if out.ndim == 2 else cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
            return _duotone(rng, gray)
        return _jitter_colour(rng, out, colour) if colour > 0 else out


def _duotone(rng: np.random.Generator, gray: np.ndarray) -> np.ndarray:
    """Colour a gray image between a random dark and a random light tone of similar hue."""
    hue = rng.random()
    sat = 0.0 if rng.random() < 0.25 else 0.6 * rng.random() ** 1.5 + 0.05
    dark = _hsv(hue + rng.normal(0, 0.04), sat * rng.uniform(0.6, 1.2), rng.uniform(0.0, 0.3))
    light = _hsv(hue, sat, rng.uniform(0.6, 1.0))
    g = gray.astype(np.float32)[..., None] * ((light - dark) / 255.0).astype(np.float32)
    return g + dark.astype(np.float32)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))),
                    dtype=np.float32) * 255.0


def _colour_matrix(rng: np.random.Generator, strength: float) -> np.ndarray:
    """A random 3x4 colour transform: saturation, hue rotation, channel gains, contrast, offset."""
    lum = np.array([0.299, 0.587, 0.114])
    sat = float(np.exp(rng.normal(0.0, 0.3 * strength)))
    s_mat = (1 - sat) * np.outer(np.ones(3), lum) + sat * np.eye(3)
    if strength >= 0.8 and rng.random() < 0.2:  # objects come in any colour
        angle = rng.uniform(-np.pi, np.pi)
    else:  # scenes keep (roughly) their natural hues
        angle = rng.normal(0.0, 0.25 * strength)
    k = np.ones(3) / np.sqrt(3)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    r_mat = np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx
    gains = np.exp(rng.normal(0.0, 0.08 * strength, 3))
    contrast = float(np.exp(rng.normal(0.0, 0.18 * strength)))
    brightness = rng.normal(0.0, 18.0 * strength)
    lin = contrast * np.diag(gains) @ r_mat @ s_mat
    offset = 128.0 * (1 - contrast) + brightness
    return np.hstack([lin, np.full((3, 1), offset)]).astype(np.float32)


def _jitter_colour(rng: np.random.Generator, rgb: np.ndarray, strength: float) -> np.ndarray:
    return cv2.transform(rgb.astype(np.float32, copy=False), _colour_matrix(rng, strength))


@functools.lru_cache(maxsize=2)
def texture_bank(extra_materials: bool = False) -> TextureBank:
    """The shared bank of natural image material (loaded once per process).

    ``extra_materials`` appends :func:`_extra_materials`, weighted to a third of all draws.
    """
    folder = _skimage_data_dir()
    images, names, scene_w, object_w = [], [], [], []
    silhouettes: dict[str, np.ndarray] = {}
    if folder is not None:
        for name, filename, sw, ow in _SKIMAGE_SOURCES:
            image = _read_rgb(folder / filename)
            if image is None:
                continue
            if name == "retina":  # drop the black surround of the fundus photo
                n = image.shape[0]
                image = image[int(0.18 * n): int(0.82 * n), int(0.18 * n): int(0.82 * n)]
            images.append(_fit_max_side(image))
            names.append(name)
            scene_w.append(sw)
            object_w.append(ow)
        horse = _read_rgb(folder / "horse.png")
        if horse is not None:
            gray = horse if horse.ndim == 2 else cv2.cvtColor(horse, cv2.COLOR_RGB2GRAY)
            silhouettes["horse"] = 1.0 - gray.astype(np.float32) / 255.0
    if not images:  # no scikit-image: keep working, with procedural noise textures
        images = _procedural_textures()
        names = [f"noise{i}" for i in range(len(images))]
        scene_w = object_w = [1.0] * len(images)
    if extra_materials:
        extra = _extra_materials(folder)
        images, names = images + list(extra.values()), names + list(extra)
        share = 0.5 / len(extra)  # the extras together weigh half the default material
        scene_w = list(scene_w) + [share * sum(scene_w)] * len(extra)
        object_w = list(object_w) + [share * sum(object_w)] * len(extra)
    return TextureBank(images, names, scene_w, object_w, silhouettes)


_EXTRA_SKIMAGE = ("color.png", "chessboard_RGB.png", "clock_motion.png", "microaneurysms.png", "phantom.png")


def _extra_materials(folder: Path | None) -> dict[str, np.ndarray]:
    """More material for training: bundled pictures the default bank leaves out, and colour
    procedural textures (fractal noise, gratings, cell mosaics, rectangle collages)."""
    out: dict[str, np.ndarray] = {}
    pictures = [folder / f for f in _EXTRA_SKIMAGE] if folder is not None else []
    try:
        import matplotlib

        pictures.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    except ImportError:
        pass
    for path in pictures:
        image = _read_rgb(path)
        if image is not None:
            out[path.stem] = _fit_max_side(image)
    rng = np.random.default_rng(20261207)
    side = 384
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    for i in range(24):
        kind = i % 4
        if kind == 0:  # colour fractal noise: three channels with their own spectra
            image = np.stack([_fractal_noise(rng, side, rng.uniform(1.2, 2.2)) for _ in range(3)], -1)
        elif kind == 1:  # gratings: a few oriented sinusoids, coloured
            image = np.zeros((side, side, 3), np.float32)
            for _ in range(int(rng.integers(1, 4))):
                theta, freq = rng.uniform(0, np.pi), rng.uniform(0.02, 0.25)
                wave = np.sin(freq * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 6.3))
                if rng.random() < 0.5:
                    wave = np.sign(wave)
                image += wave[..., None] * rng.uniform(-1, 1, 3).astype(np.float32)
        elif kind == 2:  # cell mosaic: nearest-seed colouring (Voronoi), optional dark borders
            seeds = rng.uniform(0, side, (int(rng.integers(20, 300)), 2)).astype(np.float32)
            d = (xx[..., None] - seeds[:, 0]) ** 2 + (yy[..., None] - seeds[:, 1]) ** 2
            order = np.argsort(d, axis=-1)[..., :2]
            colours = rng.uniform(0, 1, (len(seeds), 3)).astype(np.float32)
            image = colours[order[..., 0]]
            if rng.random() < 0.5:
                d1 = np.take_along_axis(d, order[..., :1], -1)[..., 0]
                d2 = np.take_along_axis(d, order[..., 1:2], -1)[..., 0]
                image *= np.clip((np.sqrt(d2) - np.sqrt(d1)) / 3.0, 0.2, 1.0)[..., None]
        else:  # collage of overlapping rectangles and discs
            image = np.tile(rng.uniform(0, 1, 3).astype(np.float32), (side, side, 1))
            for _ in range(int(rng.integers(30, 200))):
                colour = tuple(float(c) for c in rng.uniform(0, 1, 3))
                x, y = (int(v) for v in rng.integers(0, side, 2))
                r = int(rng.integers(3, 60))
                if rng.random() < 0.5:
                    cv2.circle(image, (x, y), r, colour, -1, cv2.LINE_AA)
                else:
                    cv2.rectangle(image, (x, y), (x + r, y + int(rng.integers(3, 60))), colour, -1)
        image -= image.min()
        image /= max(1e-6, float(image.max()))
        out[f"procedural{i}"] = (image * 255).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------- shapes and sprites


def _weighted_choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = [k for k, v in weights.items() if v > 0]
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    lo, hi = max(lo, 1e-6), max(hi, 1e-6)
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)


def _fill(mask: np.ndarray, points: np.ndarray) -> None:
    cv2.fillPoly(mask, [np.round(np.asarray(points) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)


def _fit_box(points: np.ndarray, w: int, h: int, margin: float = 1.0) -> np.ndarray:
    lo, hi = points.min(0), points.max(0)
    span = np.maximum(hi - lo, 1e-6)
    target = np.array([w - 1 - 2 * margin, h - 1 - 2 * margin], dtype=np.float64)
    return (points - lo) / span * target + margin


def _rounded_rect_points(w: float, h: float, radius: float, steps: int = 6) -> np.ndarray:
    r = min(radius, w / 2, h / 2)
    pts = []
    for cx, cy, a0 in ((w - r, h - r, 0.0), (r, h - r, 0.5 * np.pi), (r, r, np.pi), (w - r, r, 1.5 * np.pi)):
        for a in np.linspace(a0, a0 + 0.5 * np.pi, steps):
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return np.array(pts)


def _shape_mask(rng: np.random.Generator, kind: str, w: int, h: int, bank: TextureBank) -> np.ndarray:
    """A float32 (h, w) silhouette in [0, 1] filling its box, with anti-aliased soft edges."""
    mask = np.zeros((h, w), np.uint8)
    if kind == "ellipse":
        cv2.ellipse(mask, (int(round((w - 1) / 2 * 16)), int(round((h - 1) / 2 * 16))),
                    (int((w / 2 - 1) * 16), int((h / 2 - 1) * 16)), 0, 0, 360, 255, -1, cv2.LINE_AA, 4)
    elif kind == "blob":
        theta = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        r = np.ones_like(theta)
        for k in range(2, 6):
            r += rng.uniform(0, 0.22 / k**0.7) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        pts = np.stack([r * np.cos(theta), r * np.sin(theta)], 1)
        _fill(mask, _fit_box(pts, w, h))
    elif kind == "polygon":
        k = int(rng.integers(4, 9))
        theta = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(0.75, 1.0, k)
        pts = np.stack([r * np.cos(theta), r * np.sin(theta)], 1)
        _fill(mask, _fit_box(cv2.convexHull(pts.astype(np.float32))[:, 0].astype(np.float64), w, h))
    elif kind == "horse" and "horse" in bank.silhouettes:
        sil = bank.silhouettes["horse"]
        ys, xs = np.nonzero(sil > 0.5)
        sil = sil[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        if rng.random() < 0.5:
            sil = sil[:, ::-1]
        out = np.zeros((h, w), np.float32)
        out[1:-1, 1:-1] = cv2.resize(np.ascontiguousarray(sil), (max(1, w - 2), max(1, h - 2)),
                                     interpolation=cv2.INTER_AREA)
        return out
    else:  # rounded_rect (and the fallback for any other kind)
        radius = rng.uniform(0.04, 0.4) * min(w, h)
        _fill(mask, _rounded_rect_points(w - 3, h - 3, radius) + 1.0)
    out = mask.astype(np.float32) / 255.0
    if min(w, h) > 24:
        out = cv2.GaussianBlur(out, (0, 0), 0.4 + 0.004 * min(w, h))
    return out


def _shading(rng: np.random.Generator, alpha: np.ndarray, strength: float) -> np.ndarray:
    """Multiplicative shading that makes a flat silhouette look like a lit, rounded object."""
    h, w = alpha.shape
    size = float(min(h, w))
    height = cv2.GaussianBlur(alpha, (0, 0), max(1.0, 0.18 * size))
    relief = rng.uniform(0.35, 0.8) * size
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) * (relief / 8.0)
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) * (relief / 8.0)
    phi = rng.normal(-0.75 * np.pi, 0.6)
    elev = rng.uniform(0.5, 1.1)
    light = np.array([math.cos(phi) * math.sin(elev), math.sin(phi) * math.sin(elev), math.cos(elev)])
    norm = np.sqrt(gx * gx + gy * gy + 1.0)
    ndotl = (-gx * light[0] - gy * light[1] + light[2]) / norm
    ambient = rng.uniform(0.35, 0.6)
    shade = (ambient + (1 - ambient) * np.maximum(ndotl, 0.0)) / (ambient + (1 - ambient) * light[2])
    return (1.0 + strength * (shade - 1.0)).astype(np.float32)


class _Sprite:
    """A premultiplied RGBA float32 image with a lazily built Gaussian pyramid."""

    __slots__ = ("levels", "alpha_area")

    def __init__(self, rgb: np.ndarray, alpha: np.ndarray):
        alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
        rgba = np.dstack([np.clip(rgb, 0, 255).astype(np.float32) * alpha[..., None], alpha])
        self.levels = [np.ascontiguousarray(rgba)]
        self.alpha_area = float(alpha.sum())

    @property
    def shape(self) -> tuple[int, int]:
        return self.levels[0].shape[:2]

    def level(self, k: int) -> tuple[np.ndarray, int]:
        while len(self.levels) <= k and min(self.levels[-1].shape[:2]) >= 6:
            self.levels.append(cv2.pyrDown(self.levels[-1]))
        k = min(k, len(self.levels) - 1)
        return self.levels[k], k


def _object_sprite(rng: np.random.Generator, bank: TextureBank, kind: str, w: int, h: int,
                   texture: np.ndarray | None = None, mask: np.ndarray | None = None,
                   shade: float | None = None) -> tuple[_Sprite, np.ndarray, np.ndarray]:
    """A textured, shaded object; returns (sprite, texture, mask) so look-alikes can reuse them."""
    w, h = max(3, int(round(w))), max(3, int(round(h)))
    if mask is None:
        mask = _shape_mask(rng, kind, w, h, bank)
    elif mask.shape != (h, w):
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    if texture is None:
        zoom = _log_uniform(rng, 0.25, 1.3) * max(0.5, min(w, h) / 96.0) ** 0.5
        texture = bank.sample(rng, h, w, role="object", zoom=zoom)
        if rng.random() < 0.35 and min(w, h) >= 16:  # a label / patch of another material
            lw, lh = int(w * rng.uniform(0.3, 0.8)), int(h * rng.uniform(0.2, 0.6))
            x0, y0 = int(rng.integers(0, w - lw + 1)), int(rng.integers(0, h - lh + 1))
            texture[y0: y0 + lh, x0: x0 + lw] = bank.sample(rng, lh, lw, role="object")
    elif texture.shape[:2] != (h, w):
        texture = cv2.resize(texture, (w, h), interpolation=cv2.INTER_AREA)
    strength = rng.uniform(0.4, 1.0) if shade is None else shade
    rgb = texture * _shading(rng, mask, strength)[..., None] if strength > 0 else texture
    return _Sprite(rgb, mask), texture, mask


def _cloth_texture(rng: np.random.Generator, bank: TextureBank, h: int, w: int, dark: bool = False) -> np.ndarray:
    """Clothing: mostly a plain colour modulated by a faint natural texture, sometimes a print."""
    tex = bank.sample(rng, h, w, role="object", zoom=_log_uniform(rng, 0.3, 1.2))
    if rng.random() < 0.65:
        base = _hsv(rng.random(), rng.uniform(0, 0.7), rng.uniform(0.05, 0.45) if dark else rng.uniform(0.15, 0.95))
        mod = cv2.cvtColor(tex, cv2.COLOR_RGB2GRAY)
        mod = 1.0 + rng.uniform(0.1, 0.4) * (mod - mod.mean()) / max(1.0, float(mod.std()) * 2.0)
        tex = base[None, None, :] * mod[..., None]
    elif dark:
        tex = tex * 0.45
    return tex.astype(np.float32)


def _skin_colour(rng: np.random.Generator) -> np.ndarray:
    return _hsv(rng.uniform(0.03, 0.09), rng.uniform(0.25, 0.6), rng.uniform(0.3, 0.95))


class _PersonSprite:
    """A walking person: head, hair, torso, arms and legs whose swing follows a gait phase."""

    def __init__(self, rng: np.random.Generator, bank: TextureBank, height: int,
                 like: "_PersonSprite | None" = None, jitter: float = 0.3):
        self.h = max(24, int(height))
        self.w = max(12, int(round(0.62 * self.h)))
        self.build = rng.uniform(0.85, 1.2)
        self.leg_amp = rng.uniform(0.2, 0.45)
        self.seed = int(rng.integers(2**31))
        if like is not None:
            self.top = cv2.resize(_jitter_colour(rng, like.top, jitter), (self.w, self.h))
            self.bottom = cv2.resize(_jitter_colour(rng, like.bottom, jitter), (self.w, self.h))
            self.skin = like.skin * np.exp(rng.normal(0, 0.1 * jitter, 3)).astype(np.float32)
            self.hair = like.hair * np.exp(rng.normal(0, 0.2 * jitter, 3)).astype(np.float32)
        else:
            self.top = self._cloth(rng, bank)
            self.bottom = self._cloth(rng, bank, dark=rng.random() < 0.6)
            self.skin = _skin_colour(rng)
            self.hair = _hsv(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.7), rng.uniform(0.05, 0.5))
            if rng.random() < 0.15:  # a hat
                self.hair = _hsv(rng.random(), rng.uniform(0, 0.8), rng.uniform(0.1, 0.9))
        self.shade = rng.uniform(0.4, 0.9)
        self._cache: dict[tuple[int, int], _Sprite] = {}

    def _cloth(self, rng: np.random.Generator, bank: TextureBank, dark: bool = False) -> np.ndarray:
        return _cloth_texture(rng, bank, self.h, self.w, dark)

    def sprite(self, phase: float, amplitude: float) -> _Sprite:
        key = (int(round((phase % (2 * np.pi)) / (2 * np.pi) * 24)) % 24, int(round(np.clip(amplitude, 0, 1) * 4)))
        if key not in self._cache:
            self._cache[key] = self._draw(key[0] / 24 * 2 * np.pi, key[1] / 4)
        return self._cache[key]

    def _draw(self, phase: float, amplitude: float) -> _Sprite:
        h, w = self.h, self.w
        cx, hb = (w - 1) / 2, h * self.build
        masks = {k: np.zeros((h, w), np.uint8) for k in ("legs", "shoes", "top", "arms", "skin", "hair")}

        def limb(mask, top, angle, length, w_top, w_bot, hand=0.0):
            ax = np.array([math.sin(angle), math.cos(angle)])
            nx = np.array([ax[1], -ax[0]])
            end = top + ax * length
            pts = np.array([top + nx * w_top / 2, end + nx * w_bot / 2, end - nx * w_bot / 2, top - nx * w_top / 2])
            _fill(masks[mask], pts)
            if hand:
                cv2.circle(masks["skin"], tuple(int(round(v * 16)) for v in end), int(hand * 16), 255, -1, cv2.LINE_AA, 4)

        swing = self.leg_amp * amplitude * math.sin(phase)
        for side in (-1, 1):
            hip = np.array([cx + side * 0.05 * hb, 0.5 * h])
            limb("legs", hip, side * swing, 0.47 * h, 0.085 * hb, 0.055 * hb)
            foot = hip + 0.475 * h * np.array([math.sin(side * swing), math.cos(side * swing)])
            cv2.ellipse(masks["shoes"], (int(round((foot[0] + 0.015 * h) * 16)), int(round(foot[1] * 16))),
                        (int(0.045 * h * 16), int(0.022 * h * 16)), 0, 0, 360, 255, -1, cv2.LINE_AA, 4)
        torso = np.array([(cx - 0.115 * hb, 0.165 * h), (cx + 0.115 * hb, 0.165 * h), (cx + 0.09 * hb, 0.36 * h),
                          (cx + 0.1 * hb, 0.54 * h), (cx - 0.1 * hb, 0.54 * h), (cx - 0.09 * hb, 0.36 * h)])
        _fill(masks["top"], torso)
        for side in (-1, 1):
            limb("arms", np.array([cx + side * 0.1 * hb, 0.185 * h]), -side * 0.7 * swing + side * 0.08,
                 0.32 * h, 0.055 * hb, 0.042 * hb, hand=0.026 * h)
        _fill(masks["skin"], np.array([(cx - 0.025 * h, 0.12 * h), (cx + 0.025 * h, 0.12 * h),
                                       (cx + 0.025 * h, 0.175 * h), (cx - 0.025 * h, 0.175 * h)]))
        centre = (int(round(cx * 16)), int(round(0.075 * h * 16)))
        axes = (int(0.05 * h * 16), int(0.068 * h * 16))
        cv2.ellipse(masks["skin"], centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA, 4)
        cv2.ellipse(masks["hair"], centre, (axes[0] + 8, axes[1] + 8), 0, 180, 360, 255, -1, cv2.LINE_AA, 4)
        masks["hair"][int(0.06 * h):] = 0

        rgb = np.zeros((h, w, 3), np.float32)
        alpha = np.zeros((h, w), np.float32)
        shoes = self.hair * 0.5
        for name, colour in (("legs", self.bottom), ("shoes", shoes), ("top", self.top), ("arms", self.top * 0.82),
                             ("skin", self.skin), ("hair", self.hair)):
            m = masks[name].astype(np.float32) / 255.0
            rgb = rgb * (1 - m[..., None]) + m[..., None] * colour
            alpha = alpha + m * (1 - alpha)
        if h > 40:
            alpha = cv2.GaussianBlur(alpha, (0, 0), 0.5)
        rng = np.random.default_rng(self.seed)  # same lighting for every gait phase
        rgb = rgb * _shading(rng, alpha, self.shade)[..., None]
        return _Sprite(rgb, alpha)


# ----------------------------------------------------------------------------- rendering


def _line_kernel(dx: float, dy: float) -> np.ndarray | None:
    length = math.hypot(dx, dy)
    if length < 1.0:
        return None
    k = int(math.ceil(length)) | 1
    k = max(k, 3)
    ker = np.zeros((k, k), np.uint8)
    c = (k - 1) / 2
    p0 = (int(round((c - dx / 2) * 16)), int(round((c - dy / 2) * 16)))
    p1 = (int(round((c + dx / 2) * 16)), int(round((c + dy / 2) * 16)))
    cv2.line(ker, p0, p1, 255, 1, cv2.LINE_AA, 4)
    ker = ker.astype(np.float32)
    return ker / ker.sum()


@dataclass
class _Pasted:
    x0: int
    y0: int
    alpha: np.ndarray  # un-blurred alpha in the ROI
    blurred: np.ndarray  # alpha as composited


def _paste(dst: np.ndarray, sprite: _Sprite, affine: np.ndarray, blur: tuple[float, float] = (0.0, 0.0),
           shadow: tuple[float, float, float, float] | None = None) -> _Pasted | None:
    """Composite ``sprite`` into ``dst`` (float32 HxWx3, in place) through ``affine``.

    ``affine`` (2x3) maps level-0 sprite pixel centres to ``dst`` pixel centres; ``blur`` is
    the motion-blur vector in pixels; ``shadow`` = (dx, dy, sigma, strength) of a soft drop
    shadow cast on what is already in ``dst``.
    """
    H, W = dst.shape[:2]
    lin = affine[:, :2]
    scale = math.sqrt(max(abs(float(np.linalg.det(lin))), 1e-12))
    want = int(np.clip(math.floor(math.log2(1.0 / scale)), 0, 6)) if scale < 1 else 0
    image, level = sprite.level(want)
    lin_k = lin * (2**level)
    h, w = image.shape[:2]
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]]) @ lin_k.T + affine[:, 2]
    kernel = _line_kernel(*blur)
    margin = 2 + (kernel.shape[0] // 2 if kernel is not None else 0)
    lo, hi = corners.min(0), corners.max(0)
    if shadow is not None:
        sdx, sdy, ssig, _ = shadow
        lo = np.minimum(lo, lo + (sdx, sdy)) - 3 * ssig
        hi = np.maximum(hi, hi + (sdx, sdy)) + 3 * ssig
    x0, y0 = max(0, int(math.floor(lo[0])) - margin), max(0, int(math.floor(lo[1])) - margin)
    x1, y1 = min(W, int(math.ceil(hi[0])) + margin + 1), min(H, int(math.ceil(hi[1])) + margin + 1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    m = np.hstack([lin_k, (affine[:, 2] - (x0, y0))[:, None]]).astype(np.float64)
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = warped[..., 3].copy()
    if kernel is not None:
        warped = cv2.filter2D(warped, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    region = dst[y0:y1, x0:x1]
    if shadow is not None and shadow[3] > 0:
        ms = m.copy()
        ms[:, 2] += shadow[:2]
        sh = cv2.warpAffine(np.ascontiguousarray(image[..., 3]), ms, size, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if shadow[2] >= 0.3:
            sh = cv2.GaussianBlur(sh, (0, 0), shadow[2])
        region *= (1.0 - shadow[3] * sh)[..., None]
    a = warped[..., 3:4]
    region *= 1.0 - a
    region += warped[..., :3]
    return _Pasted(x0, y0, alpha, warped[..., 3])


def _affine(centre: Seq[float], scale: Seq[float], angle: float, origin: Seq[float]) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    lin = np.array([[c * scale[0], -s * scale[1]], [s * scale[0], c * scale[1]]])
    return np.hstack([lin, (np.asarray(centre, np.float64) - lin @ np.asarray(origin, np.float64))[:, None]])


class _Layer:
    """One moving object: a sprite (or a per-frame sprite function) with a path over frames."""

    def __init__(self, sprite: _Sprite | Callable[[int], _Sprite], centre: np.ndarray, scale: np.ndarray,
                 angle: np.ndarray, *, origin: Seq[float] | None = None, shadow=None, blur: float = 0.0,
                 front: bool = False, name: str = "", shadow_size: float | None = None):
        self.sprite = sprite
        self.shadow_size = shadow_size  # the length the shadow parameters are relative to (default: object size)
        self.centre = np.asarray(centre, np.float64)
        n = len(self.centre)
        self.scale = np.broadcast_to(np.asarray(scale, np.float64), (n, 2)) if np.ndim(scale) else np.full((n, 2), float(scale))
        self.angle = np.broadcast_to(np.asarray(angle, np.float64), (n,))
        self.origin = origin
        self.shadow = shadow  # (dx, dy, sigma, strength) in units of the object's size, or None
        self.blur = blur  # exposure: blur length = speed * exposure
        self.front = front
        self.name = name
        self.velocity = np.gradient(self.centre, axis=0) if n > 1 else np.zeros_like(self.centre)

    def sprite_at(self, t: int) -> _Sprite:
        return self.sprite(t) if callable(self.sprite) else self.sprite

    def affine_at(self, t: int, sprite: _Sprite) -> np.ndarray:
        h, w = sprite.shape
        origin = self.origin if self.origin is not None else ((w - 1) / 2, (h - 1) / 2)
        return _affine(self.centre[t], self.scale[t], float(self.angle[t]), origin)

    def paste(self, dst: np.ndarray, t: int) -> tuple[_Pasted | None, float]:
        """Composite frame ``t`` of this object; returns what was pasted and its full silhouette area."""
        sprite = self.sprite_at(t)
        affine = self.affine_at(t, sprite)
        v = self.velocity[t]
        blur = (float(v[0] * self.blur), float(v[1] * self.blur)) if self.blur > 0 else (0.0, 0.0)
        shadow = None
        if self.shadow is not None:
            size = self.shadow_size or math.sqrt(abs(np.linalg.det(affine[:, :2])) * sprite.alpha_area)
            dx, dy, sig, strength = self.shadow
            shadow = (dx * size, dy * size, sig * size, strength)
        area = sprite.alpha_area * abs(float(np.linalg.det(affine[:, :2])))
        return _paste(dst, sprite, affine, blur, shadow), area


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(x) < 3:
        return x
    r = int(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(x, [(r, r)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    if x.ndim == 1:
        return np.convolve(pad, k, mode="valid")
    return np.stack([np.convolve(pad[:, j], k, mode="valid") for j in range(x.shape[1])], 1)


def _walk(rng: np.random.Generator, n: int, amplitude: float, smooth: float = 8.0) -> np.ndarray:
    """A smooth random path starting at 0 whose largest excursion is ``amplitude``."""
    if n < 2 or amplitude <= 0:
        return np.zeros(n)
    x = _smooth(np.cumsum(rng.standard_normal(n)), smooth)
    x = x - x[0]
    peak = np.abs(x).max()
    return x * (amplitude / peak) if peak > 1e-9 else np.zeros(n)


def _trajectory(rng: np.random.Generator, n: int, start: np.ndarray, speed: float, style: str,
                lo: np.ndarray, hi: np.ndarray, burst: bool = False) -> np.ndarray:
    """Centre positions (n, 2): an Ornstein-Uhlenbeck velocity kept inside [lo, hi]."""
    p = np.empty((n, 2))
    p[0] = start
    if style == "walk":
        ang = (0.0 if rng.random() < 0.5 else np.pi) + rng.normal(0, 0.3)
        theta, sigma, turn_rate = 0.05, 0.04 * speed + 0.01, 0.005
    elif style == "jerky":
        ang = rng.uniform(0, 2 * np.pi)
        theta, sigma, turn_rate = 0.15, 0.45 * speed + 0.3, 0.06
    else:
        ang = rng.uniform(0, 2 * np.pi)
        theta, sigma, turn_rate = 0.06, 0.12 * speed + 0.05, 0.025
    vm = speed * np.array([math.cos(ang), math.sin(ang)])
    v = vm.copy()
    noise = rng.standard_normal((n, 2)) * sigma
    turns = rng.random(n) < turn_rate
    pause = rng.random(n) < (0.01 if style == "walk" else 0.0)
    stopped, heading = False, vm.copy()
    gain = np.ones(n)
    if burst and n > 10:
        t0 = int(rng.integers(1, n - 5))
        gain[t0: t0 + int(rng.integers(4, 15))] = rng.uniform(2.0, 3.5)
    for t in range(1, n):
        if turns[t]:
            a = math.atan2(vm[1], vm[0]) + rng.normal(0, 1.2 if style != "walk" else 0.3)
            vm = np.linalg.norm(vm) * np.array([math.cos(a), math.sin(a)])
        if pause[t]:  # a walker stops for a while, or starts again
            stopped = not stopped
            if stopped:
                heading, vm = vm.copy(), np.zeros(2)
            else:
                vm = heading
        v = v + theta * (vm - v) + noise[t]
        q = p[t - 1] + v * gain[t]
        for a in range(2):
            if q[a] < lo[a] or q[a] > hi[a]:
                q[a] = np.clip(2 * (lo[a] if q[a] < lo[a] else hi[a]) - q[a], lo[a], hi[a])
                v[a], vm[a] = -v[a], -vm[a]
        p[t] = q
    return p


def _ramp(n: int, t_in0: int, t_in1: int, t_out0: int, t_out1: int) -> np.ndarray:
    """0 before t_in0, cosine up to 1 at t_in1, 1 until t_out0, cosine down to 0 at t_out1."""
    t = np.arange(n, dtype=np.float64)
    w = np.zeros(n)
    up = (t >= t_in0) & (t < t_in1)
    w[up] = 0.5 - 0.5 * np.cos(np.pi * (t[up] - t_in0) / max(1, t_in1 - t_in0))
    w[(t >= t_in1) & (t <= t_out0)] = 1.0
    down = (t > t_out0) & (t < t_out1)
    w[down] = 0.5 + 0.5 * np.cos(np.pi * (t[down] - t_out0) / max(1, t_out1 - t_out0))
    return w


class _Scene:
    """Plans one sequence from a random generator and renders it."""

    def __init__(self, rng: np.random.Generator, cfg: SyntheticConfig, bank: TextureBank):
        self.rng, self.cfg, self.bank = rng, cfg, bank
        W, H = cfg.width, cfg.height
        self.W, self.H = W, H
        n = self.n = int(rng.integers(cfg.num_frames[0], cfg.num_frames[1] + 1))
        flag = lambda p: bool(rng.random() < p)  # noqa: E731
        self.info: dict = {}
        self.flags = {
            name: flag(getattr(cfg, f"{name}_prob"))
            for name in ("occlusion", "distractor", "out_of_view", "scale_change", "aspect_change", "rotation",
                         "holder", "drop_shadow", "motion_blur", "illumination", "shadow", "camera_motion",
                         "camera_shake", "defocus", "vignette", "noise", "jpeg", "grayscale", "fast_motion",
                         "lookalike_clutter")
        }
        self.exposure = rng.uniform(0.35, 1.1) if self.flags["motion_blur"] else 0.0
        self._plan_camera()
        self._plan_target()
        self.layers_behind: list[_Layer] = []
        self.layers_front: list[_Layer] = []
        if self.flags["holder"] and self.kind != "person":
            self._plan_holder()
        if self.flags["distractor"]:
            self._plan_distractors()
        if self.flags["occlusion"] and n >= 8:
            self._plan_occluder()
        self._build_canvas()
        # drawn only when enabled, so that configs without it keep their random stream
        if cfg.camouflage_prob > 0 and self.kind != "person" and rng.random() < cfg.camouflage_prob:
            self._camouflage_target()
        self._plan_photometry()
        self.info.update(shape=self.kind, frames=n, size=round(self.size0, 2), speed=round(self.speed, 3),
                         motion=self.style, flags={k: v for k, v in self.flags.items() if v})

    # -- camera -------------------------------------------------------------------------------------------

    def _plan_camera(self) -> None:
        rng, n, W, H = self.rng, self.n, self.W, self.H
        moving = self.flags["camera_motion"] and not self.cfg.flat_background
        margin = rng.uniform(1.25, 1.7) if moving else 1.0
        self.cw, self.ch = int(math.ceil(W * margin)), int(math.ceil(H * margin))
        zoom = np.ones(n)
        angle = np.zeros(n)
        centre = np.tile([(self.cw - 1) / 2, (self.ch - 1) / 2], (n, 1)).astype(np.float64)
        if moving:
            zoom = np.exp(np.abs(_walk(rng, n, rng.uniform(0.0, 0.35), 10.0)))  # zoom in only
            zoom = np.maximum(zoom, 1.0) * (1.0 + 0.03)
            angle = _walk(rng, n, np.deg2rad(rng.uniform(0, 3)), 10.0)
            half = np.array([W, H]) / 2
            speed = _log_uniform(rng, 0.3, 4.0)
            pan = _trajectory(rng, n, centre[0], speed, "smooth", np.zeros(2), np.array([self.cw, self.ch]) - 1.0)
            lo = half[None, :] / zoom[:, None] + 2
            hi = np.array([self.cw, self.ch])[None, :] - 1 - lo
            centre = np.clip(pan, lo, np.maximum(lo, hi))
        self.cam = np.stack([_affine(((W - 1) / 2, (H - 1) / 2), (z, z), a, c) for z, a, c in zip(zoom, angle, centre)])
        self.cam_zoom = zoom
        self.cam_angle = angle
        self.cam_static = not moving
        shake = np.zeros((n, 2))
        if self.flags["camera_shake"]:
            amp = rng.uniform(0.3, 2.5) * W / 320
            shake = _smooth(rng.standard_normal((n, 2)), rng.uniform(0.7, 2.0))
            shake *= amp / max(1e-6, np.abs(shake).max())
            self.cam[:, :, 2] += shake
        self.shake = shake
        # frame-space velocity of the background at the frame centre
        c = np.array([(W - 1) / 2, (H - 1) / 2])
        vel = np.zeros((n, 2))
        for t in range(1, n):
            vel[t] = self.cam[t, :, :2] @ self.frame_to_world(t - 1, c) + self.cam[t, :, 2] - c
        if n > 1:
            vel[0] = vel[1]
        self.cam_velocity = vel

    def world_to_frame(self, q: np.ndarray) -> np.ndarray:
        return np.einsum("nij,j->ni", self.cam[:, :, :2], q) + self.cam[:, :, 2]

    def frame_to_world(self, t: int, p: np.ndarray) -> np.ndarray:
        """A point of frame ``t`` on the canvas."""
        inv = cv2.invertAffineTransform(self.cam[t])
        return inv[:, :2] @ p + inv[:, 2]

    # -- target -------------------------------------------------------------------------------------------

    def _plan_target(self) -> None:
        rng, cfg, n, W, H = self.rng, self.cfg, self.n, self.W, self.H
        kind = self.kind = _weighted_choice(rng, cfg.shapes)
        lo_size, hi_size = cfg.target_size
        hi_size = min(hi_size, 0.6 * min(W, H))
        lo_size = min(lo_size, hi_size)
        if rng.random() < cfg.small_target_prob:
            size0 = _log_uniform(rng, lo_size, min(hi_size, 2 * lo_size))
        else:
            size0 = _log_uniform(rng, lo_size, hi_size)
        self.size0 = size0
        if kind == "person":
            aspect = rng.uniform(0.3, 0.42)
        elif kind == "horse":
            aspect = 1.25 * rng.uniform(0.85, 1.15)
        else:
            aspect = _log_uniform(rng, 0.4, 2.5)
        bw0, bh0 = size0 * math.sqrt(aspect), size0 / math.sqrt(aspect)

        log_s = _walk(rng, n, rng.uniform(0.3, 1.0) * math.log(cfg.max_scale_change), rng.uniform(6, 20)) \
            if self.flags["scale_change"] else np.zeros(n)
        # keep the box within sensible absolute sizes
        log_s = np.clip(log_s, math.log(max(5.0, 0.6 * cfg.target_size[0]) / size0),
                        math.log(0.75 * min(W, H) / max(bw0, bh0)))
        log_a = _walk(rng, n, rng.uniform(0.3, 1.0) * math.log(cfg.max_aspect_change), rng.uniform(6, 20)) \
            if self.flags["aspect_change"] else np.zeros(n)
        if kind == "person":
            log_a *= 0.3
        max_rot = np.deg2rad(cfg.max_rotation) * (0.2 if kind == "person" else 1.0)
        angle = _walk(rng, n, rng.uniform(0.3, 1.0) * max_rot, rng.uniform(5, 15)) if self.flags["rotation"] else np.zeros(n)
        if self.flags["rotation"] and kind != "person" and rng.random() < 0.3:
            angle = angle + rng.uniform(-max_rot, max_rot)  # already tilted at the start

        # sprite at (about) the largest size it will be rendered at: rendering only shrinks
        up = float(np.exp(np.max(log_s) + 0.5 * np.max(np.abs(log_a))))
        if kind == "person":
            spr_h = int(np.clip(bh0 * up / 0.98, 32, 320))
            self.person = _PersonSprite(rng, self.bank, spr_h)
            sprite_h, sprite_w = self.person.h, self.person.w
            base = bh0 / (0.98 * sprite_h)
            self.target_texture, self.target_mask = None, None
        else:
            spr_w = int(np.clip(bw0 * up, 16, 320))
            spr_h = int(np.clip(bh0 * up, 16, 320))
            sprite, tex, mask = _object_sprite(rng, self.bank, kind, spr_w, spr_h)
            sprite_h, sprite_w = sprite.shape
            base = math.sqrt(bw0 * bh0 / (sprite_w * sprite_h))
            self.target_sprite, self.target_texture, self.target_mask = sprite, tex, mask
        s = np.exp(log_s)
        sa = np.exp(0.5 * log_a)
        scale = np.stack([base * s * sa, base * s / sa], 1)

        # motion
        self.style = "walk" if kind == "person" else _weighted_choice(rng, cfg.motions)
        speed = _log_uniform(rng, max(cfg.speed[0], 1e-3), max(cfg.speed[1], 1e-3))
        if kind == "person":
            speed = min(speed, 0.1 * bh0)
        self.speed = speed
        ext_x = min(0.5 * math.hypot(bw0, bh0) + 2, 0.5 * W)
        ext_y = min(0.5 * math.hypot(bw0, bh0) + 2, 0.5 * H)
        start = np.array([rng.uniform(ext_x, W - ext_x), rng.uniform(ext_y, H - ext_y)])
        # later frames may be truncated by the frame edge, up to about a third of the box
        lo = np.array([min(0.2 * bw0, W / 2), min(0.2 * bh0, H / 2)])
        hi = np.array([W - 1, H - 1]) - lo
        centre = _trajectory(rng, n, start, speed, self.style, lo, hi, burst=self.flags["fast_motion"])

        if self.flags["out_of_view"] and n >= 20:
            centre = self._out_of_view(centre, bw0 * s.max(), bh0 * s.max())
        centre = centre + self.shake
        self.t_centre, self.t_scale, self.t_angle = centre, scale, angle
        self.t_box0 = (bw0, bh0)
        self.t_bbox = np.stack([bw0 * s * sa, bh0 * s / sa], 1)  # approximate box size per frame

        if kind == "person":
            speed_t = np.linalg.norm(np.gradient(centre, axis=0), axis=1) if n > 1 else np.zeros(n)
            phase = np.cumsum(2 * np.pi * speed_t / (0.8 * bh0 * s))
            amp = np.clip(speed_t / (0.02 * bh0 * s + 1e-6), 0, 1) * np.clip(
                np.abs(np.gradient(centre[:, 0])) / (speed_t + 1e-6), 0.3, 1)
            person = self.person
            sprite_fn = lambda t: person.sprite(phase[t], amp[t])  # noqa: E731
        else:
            sprite_fn = self.target_sprite
        shadow = self._shadow_params() if self.flags["drop_shadow"] else None
        self.target = _Layer(sprite_fn, centre, scale, angle, shadow=shadow, blur=self.exposure, name="target")

    def _camouflage_target(self) -> None:
        """Re-texture the target with a patch of the background itself, cut one to two target
        sizes from where it starts: a target that looks like its surroundings, told apart only by
        its outline and its motion. Look-alikes planned before (distractors, clutter) keep the
        texture the target was given first."""
        rng, cw, ch = self.rng, self.cw, self.ch
        h, w = self.target_mask.shape
        # the sprite is drawn at about the scale it is rendered at, so is this patch
        ph, pw = min(ch, max(2, round(h * self.t_scale[0, 1]))), min(cw, max(2, round(w * self.t_scale[0, 0])))
        start = self.frame_to_world(0, self.t_centre[0])
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 2.0) * math.hypot(pw, ph)
        cx, cy = start + dist * np.array([math.cos(angle), math.sin(angle)])
        x0 = int(np.clip(round(cx - pw / 2), 0, cw - pw))
        y0 = int(np.clip(round(cy - ph / 2), 0, ch - ph))
        patch = cv2.resize(self.canvas[y0:y0 + ph, x0:x0 + pw], (w, h), interpolation=cv2.INTER_LINEAR)
        sprite, _, _ = _object_sprite(rng, self.bank, self.kind, w, h, texture=patch, mask=self.target_mask,
                                      shade=rng.uniform(0.0, 0.4))
        self.target_sprite = self.target.sprite = sprite
        self.info["camouflage"] = True

    def _shadow_params(self) -> tuple[float, float, float, float]:
        rng = self.rng
        ang = rng.normal(0.25 * np.pi, 0.5)
        dist = rng.uniform(0.03, 0.25)
        return (dist * math.cos(ang), dist * math.sin(ang), rng.uniform(0.04, 0.15), rng.uniform(0.2, 0.55))

    def _out_of_view(self, centre: np.ndarray, bw: float, bh: float) -> np.ndarray:
        rng, n, W, H = self.rng, self.n, self.W, self.H
        t_exit = int(rng.integers(int(0.25 * n), int(0.7 * n)))
        ramp = int(rng.integers(3, 12))
        t_exit = max(t_exit, ramp + 2)
        dur = int(rng.integers(3, max(4, min(int(0.3 * n), 30))))
        p = centre[t_exit]
        ext = 0.5 * math.hypot(bw, bh) * 1.3 + 4 + self.exposure * 20
        dists = np.array([p[0], W - 1 - p[0], p[1], H - 1 - p[1]])
        edge = int(np.argmin(dists + rng.uniform(0, 0.3 * min(W, H), 4)))
        off = p.copy()
        if edge == 0:
            off[0] = -ext
        elif edge == 1:
            off[0] = W - 1 + ext
        elif edge == 2:
            off[1] = -ext
        else:
            off[1] = H - 1 + ext
        w = _ramp(n, t_exit - ramp, t_exit, t_exit + dur, t_exit + dur + ramp)
        self.info["out_of_view_frames"] = [t_exit, t_exit + dur]
        return (1 - w)[:, None] * centre + w[:, None] * off

    def _far_start(self, size: float, avoid: Iterable[tuple[np.ndarray, float]]) -> np.ndarray:
        rng, W, H = self.rng, self.W, self.H
        best, best_d = None, -np.inf
        for _ in range(30):
            p = np.array([rng.uniform(0, W - 1), rng.uniform(0, H - 1)])
            d = min((np.linalg.norm(p - q) - 0.6 * (size + s) for q, s in avoid), default=np.inf)
            if d > 4:
                return p
            if d > best_d:
                best, best_d = p, d
        return best

    def _crossing_path(self, t_cross: int, offset: float, rel_speed: float, along: float) -> np.ndarray:
        """A path that passes the (smoothed) target at frame ``t_cross`` with a lateral offset."""
        rng, n = self.rng, self.n
        smooth = _smooth(self.t_centre, 6.0)
        ang = (0.0 if rng.random() < 0.5 else np.pi) + rng.normal(0, 0.35) if rng.random() < 0.7 else rng.uniform(0, 2 * np.pi)
        d = np.array([math.cos(ang), math.sin(ang)])
        perp = np.array([-d[1], d[0]])
        need = (along + 6) / max(1, t_cross)
        rel_speed = max(rel_speed, need)
        t = np.arange(n) - t_cross
        return smooth + perp[None] * offset + d[None] * rel_speed * t[:, None]

    # -- other objects ------------------------------------------------------------------------------------

    def _plan_holder(self) -> None:
        """A hand (and arm reaching in from outside the frame) holding the target."""
        rng, W, H = self.rng, self.W, self.H
        bw0, bh0 = self.t_box0
        size = math.sqrt(bw0 * bh0)
        hand_r = max(3.0, rng.uniform(0.16, 0.26) * size)
        arm_w = hand_r * rng.uniform(1.3, 1.7)
        length = int(math.hypot(W, H) * 1.3 + 4 * hand_r)
        sh = int(math.ceil(2 * hand_r + 4))
        sw = length
        skin = _skin_colour(rng)
        tex = self.bank.sample(rng, sh, sw, role="object", zoom=0.6)
        mod = cv2.cvtColor(tex, cv2.COLOR_RGB2GRAY)
        mod = 1.0 + 0.08 * (mod - mod.mean()) / max(1.0, float(mod.std()))
        rgb = skin[None, None, :] * mod[..., None]
        mask = np.zeros((sh, sw), np.uint8)
        cy = (sh - 1) / 2
        ox = hand_r + 1
        cv2.ellipse(mask, (int(ox * 16), int(cy * 16)), (int(hand_r * 16), int(hand_r * 0.9 * 16)), 0, 0, 360, 255, -1,
                    cv2.LINE_AA, 4)
        _fill(mask, np.array([(ox, cy - arm_w / 2), (sw - 1, cy - arm_w / 2 * 1.1), (sw - 1, cy + arm_w / 2 * 1.1),
                              (ox, cy + arm_w / 2)]))
        sleeve = int(ox + hand_r * rng.uniform(2.5, 6.0))
        cloth = _cloth_texture(rng, self.bank, sh, sw - sleeve)
        rgb[:, sleeve:] = cloth
        mask_f = mask.astype(np.float32) / 255.0
        mask_f[:, sleeve:] = 0
        _fill(mask, np.array([(sleeve, cy - arm_w * 0.62), (sw - 1, cy - arm_w * 0.7), (sw - 1, cy + arm_w * 0.7),
                              (sleeve, cy + arm_w * 0.62)]))
        alpha = np.maximum(mask_f, (mask.astype(np.float32) / 255.0) * (np.arange(sw) >= sleeve)[None, :])
        sprite = _Sprite(rgb * _shading(rng, alpha, 0.6)[..., None], alpha)
        # where the hand grips the target (in target-local, un-rotated units) and where the arm comes from
        side = str(rng.choice(["bottom", "left", "right"], p=[0.6, 0.2, 0.2]))
        u = rng.uniform(-0.3, 0.3)
        local = {"bottom": (u, 0.45), "left": (-0.45, u), "right": (0.45, u)}[side]
        anchor = {"bottom": (rng.uniform(0.2, 0.8) * W, H * 1.35), "left": (-0.35 * W, rng.uniform(0.5, 1.2) * H),
                  "right": (1.35 * W, rng.uniform(0.5, 1.2) * H)}[side]
        n = self.n
        centre = np.empty((n, 2))
        angle = np.empty(n)
        for t in range(n):
            c, s = math.cos(self.t_angle[t]), math.sin(self.t_angle[t])
            lx, ly = local[0] * self.t_bbox[t, 0], local[1] * self.t_bbox[t, 1]
            hand = self.t_centre[t] + (c * lx - s * ly, s * lx + c * ly)
            direc = np.asarray(anchor) - hand
            angle[t] = math.atan2(direc[1], direc[0])
            centre[t] = hand
        layer = _Layer(sprite, centre, 1.0, angle, origin=(ox, cy), blur=self.exposure, front=True, name="holder",
                       shadow=self.target.shadow, shadow_size=2 * hand_r)
        self.layers_front.append(layer)
        self.info["holder"] = side

    def _plan_distractors(self) -> None:
        rng, cfg, n = self.rng, self.cfg, self.n
        k = int(rng.integers(1, cfg.max_distractors + 1))
        bw0, bh0 = self.t_box0
        size_t = math.sqrt(bw0 * bh0)
        avoid = [(self.t_centre[0], size_t)]
        fronts = []
        for j in range(k):
            rel = _log_uniform(rng, 0.75, 1.3)
            same = rng.random() < cfg.same_texture_prob
            if self.kind == "person":
                person = _PersonSprite(rng, self.bank, int(self.person.h * min(1.0, rel)), like=self.person,
                                       jitter=0.0 if same else rng.uniform(0.2, 0.8))
                spr_h = person.h
                base = rel * bh0 / (0.98 * spr_h)
                amp = rng.uniform(0.5, 1.0)
                phase0 = rng.uniform(0, 2 * np.pi)
            else:
                tex = self.target_texture
                if not same:
                    tex = _jitter_colour(rng, tex[:, ::-1] if rng.random() < 0.5 else tex, rng.uniform(0.2, 0.7))
                mask = self.target_mask if (same and rng.random() < 0.6) else None
                sh, sw = self.target_texture.shape[:2]
                sprite, _, _ = _object_sprite(rng, self.bank, self.kind, sw, sh, texture=tex, mask=mask)
                base = rel * math.sqrt(bw0 * bh0 / (sw * sh))
            speed = _log_uniform(rng, max(0.2, 0.5 * self.speed), max(0.3, 1.5 * self.speed))
            if self.kind == "person":
                speed = min(speed, 0.1 * bh0 * rel)
            size_d = size_t * rel
            if rng.random() < 0.5 and n >= 8:
                t_cross = int(rng.integers(max(2, n // 5), max(3, n - 2)))
                offset = rng.uniform(0.3, 1.4) * size_d * rng.choice([-1, 1])
                centre = self._crossing_path(t_cross, offset, _log_uniform(rng, 0.7, 4.0), size_t + size_d)
            else:
                start = self._far_start(size_d, avoid)
                lo = np.array([-0.3 * size_d, -0.3 * size_d])
                hi = np.array([self.W, self.H]) - 1 - lo
                centre = _trajectory(rng, n, start, speed, self.style, lo, hi)
            avoid.append((centre[0], size_d))
            centre = centre + self.shake
            log_s = _walk(rng, n, 0.3 * math.log(cfg.max_scale_change), 10.0) if self.flags["scale_change"] else np.zeros(n)
            scale = base * np.exp(log_s)[:, None] * np.ones((1, 2))
            angle = _walk(rng, n, np.deg2rad(cfg.max_rotation) * 0.5, 10.0) if (self.flags["rotation"] and self.kind != "person") else np.zeros(n)
            if self.kind == "person":
                spd = np.linalg.norm(np.gradient(centre, axis=0), axis=1) if n > 1 else np.zeros(n)
                ph = phase0 + np.cumsum(2 * np.pi * spd / (0.8 * bh0 * rel))
                sprite_fn = (lambda p, ph=ph, a=amp: (lambda t: p.sprite(ph[t], a)))(person)
            else:
                sprite_fn = sprite
            front = rng.random() < 0.35
            layer = _Layer(sprite_fn, centre, scale, angle, shadow=self.target.shadow, blur=self.exposure,
                           front=front, name=f"distractor{j}")
            (self.layers_front if front else self.layers_behind).append(layer)
            fronts.append(front)
        self.info["distractors"] = {"count": k, "in_front": int(sum(fronts))}

    def _plan_occluder(self) -> None:
        rng, cfg, n = self.rng, self.cfg, self.n
        full = rng.random() < cfg.full_occlusion_prob
        t_occ = int(rng.integers(max(3, int(0.2 * n)), max(4, int(0.85 * n))))
        bw, bh = self.t_bbox[t_occ]
        ang_t = self.t_angle[t_occ]
        ext_w = abs(math.cos(ang_t)) * bw + abs(math.sin(ang_t)) * bh
        ext_h = abs(math.sin(ang_t)) * bw + abs(math.cos(ang_t)) * bh
        static = rng.random() < cfg.static_occluder_prob
        if static:
            layer = self._static_occluder(t_occ, full, ext_w, ext_h)
            if layer is not None:
                self.layers_front.append(layer)
                self.info["occlusion"] = {"kind": "static", "full": full, "frame": t_occ}
                return
        # a moving occluder crossing the target; mostly horizontal, like passers-by or objects
        kind = _weighted_choice(rng, {"rounded_rect": 1.0, "ellipse": 0.6, "blob": 0.8, "polygon": 0.4,
                                      "person": 0.8 if self.kind == "person" else 0.2})
        if full:
            ow, oh = ext_w * rng.uniform(1.5, 2.6) + 4, ext_h * rng.uniform(1.4, 2.2) + 4
            offset = rng.uniform(-0.1, 0.1) * ext_h
        else:
            ow, oh = ext_w * rng.uniform(0.4, 1.2) + 2, ext_h * rng.uniform(0.5, 1.3) + 2
            offset = rng.uniform(0.1, 0.75) * (ext_h + oh) / 2 * rng.choice([-1, 1])
        if kind == "person":
            oh = max(oh, ext_h * 1.3)
            ow = max(ow, oh * 0.35)
            person = _PersonSprite(rng, self.bank, int(min(320, oh / 0.98)))
            base = oh / (0.98 * person.h)
            phase = rng.uniform(0, 2 * np.pi) + np.arange(n) * 2 * np.pi * rng.uniform(0.02, 0.06)
            sprite = (lambda p, ph: (lambda t: p.sprite(ph[t], 1.0)))(person, phase)
            shape_w, shape_h = 0.5 * oh, oh
        else:
            sprite, _, _ = _object_sprite(rng, self.bank, kind, min(ow, 400), min(oh, 400))
            base = np.array([ow / sprite.shape[1], oh / sprite.shape[0]])
            shape_w, shape_h = ow, oh
        rel_speed = _log_uniform(rng, 1.0, 6.0) * max(1.0, math.sqrt(ext_w * ext_h) / 40)
        # the path: across the target at t_occ, offset perpendicular to its direction of travel
        centre = self._crossing_path(t_occ, offset, rel_speed, 0.5 * (math.hypot(shape_w, shape_h) + math.hypot(ext_w, ext_h)))
        centre = centre + self.shake
        scale = np.ones((n, 2)) * base
        layer = _Layer(sprite, centre, scale, np.zeros(n), blur=self.exposure, front=True, name="occluder",
                       shadow=self._shadow_params() if self.flags["drop_shadow"] else None)
        self.layers_front.append(layer)
        self.info["occlusion"] = {"kind": "moving", "full": full, "frame": t_occ, "shape": kind}

    def _static_occluder(self, t_occ: int, full: bool, ext_w: float, ext_h: float) -> _Layer | None:
        """A pole / post (vertical) or a low wall (covers the lower part) fixed in the world."""
        rng, W, H = self.rng, self.W, self.H
        pole = rng.random() < 0.6
        p = self.t_centre[t_occ]
        if pole:
            ow = ext_w * (rng.uniform(1.3, 2.0) if full else rng.uniform(0.3, 0.7)) + 2
            oh = max(H * 1.6, ext_h * 2)
            off = np.array([0.0 if full else rng.uniform(-0.4, 0.4) * ext_w, rng.uniform(-0.2, 0.2) * H])
        else:
            ow = max(ext_w * rng.uniform(2.5, 6), 0.3 * W)
            if full:  # a wall / parked car in front of the whole target
                oh = ext_h * rng.uniform(1.4, 2.0) + 2
                off = np.array([rng.uniform(-0.3, 0.3) * ext_w, 0.0])
            else:  # a low wall / bench / table edge hiding the lower part
                oh = ext_h * rng.uniform(0.6, 1.2) + 2
                top = 0.5 * ext_h - rng.uniform(0.25, 0.6) * ext_h
                off = np.array([rng.uniform(-0.3, 0.3) * ext_w, top + oh / 2])
        centre = self.world_to_frame(self.frame_to_world(t_occ, p + off))
        # the target must be clear of it in the first frame
        d = np.abs(centre[0] - self.t_centre[0])
        bw0, bh0 = self.t_bbox[0]
        if not (d[0] > (ow + bw0) / 2 + 3 or d[1] > (oh + bh0) / 2 + 3):
            return None
        sw, sh = int(min(ow, 200)), int(min(oh, 400))
        kind = "rounded_rect"
        sprite, _, _ = _object_sprite(rng, self.bank, kind, max(sw, 4), max(sh, 4))
        base = np.array([ow / sprite.shape[1], oh / sprite.shape[0]])
        scale = base[None, :] * self.cam_zoom[:, None]
        return _Layer(sprite, centre, scale, self.cam_angle + rng.normal(0, 0.03), blur=0.0, front=True,
                      name="static_occluder")

    # -- background ---------------------------------------------------------------------------------------

    def _material(self, h: int, w: int, colour: float, max_rotation: float = math.pi, role: str = "scene") -> np.ndarray:
        """A large patch of one material, scaled so that it (nearly) covers the patch unmirrored."""
        rng, bank = self.rng, self.bank
        idx = bank.pick(rng, role)
        ih, iw = bank.pyramids[idx][0].shape[:2]
        cover = max(w / iw, h / ih) if max_rotation < 0.2 else math.hypot(w, h) / min(iw, ih)
        zoom = cover * _log_uniform(rng, 0.8, 2.0)
        return bank.sample(rng, h, w, index=idx, zoom=zoom, max_rotation=max_rotation, colour=colour)

    def _build_canvas(self) -> None:
        rng, cfg, bank = self.rng, self.cfg, self.bank
        cw, ch = self.cw, self.ch
        if cfg.flat_background:
            self.canvas = np.empty((ch, cw, 3), np.float32)
            self.canvas[:] = np.asarray(cfg.background_color, np.float32)
            self.info["background"] = "flat"
            return
        style = _weighted_choice(rng, cfg.backgrounds)
        self.info["background"] = style
        if style == "photo":
            idx = bank.pick(rng, "photo")
            ih, iw = bank.pyramids[idx][0].shape[:2]
            cover = max(cw / iw, ch / ih)
            canvas = bank.sample(rng, ch, cw, index=idx, zoom=cover * _log_uniform(rng, 0.9, 2.5), max_rotation=0.04,
                                 colour=0.4)
        elif style == "split":
            a = self._material(ch, cw, 0.7, max_rotation=0.1)
            b = self._material(ch, cw, 0.7, max_rotation=0.1)
            yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
            ang = rng.normal(0, 0.25) if rng.random() < 0.75 else rng.normal(np.pi / 2, 0.2)
            c0 = rng.uniform(0.25, 0.75) * np.array([cw, ch])
            dist = (xx - c0[0]) * -math.sin(ang) + (yy - c0[1]) * math.cos(ang)
            w = 1.0 / (1.0 + np.exp(-dist / rng.uniform(0.5, 4.0)))
            canvas = a * (1 - w[..., None]) + b * w[..., None]
            canvas *= (1.0 - rng.uniform(0, 0.25) * w)[..., None]
        else:  # surface / table: one material seen more or less from above
            canvas = self._material(ch, cw, 0.6, role="table" if style == "table" else "scene")
        canvas = canvas.astype(np.float32)
        # a broad light gradient
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
        g = rng.normal(0, 0.35, 2) / np.array([cw, ch])
        grad = 1.0 + g[0] * (xx - cw / 2) + g[1] * (yy - ch / 2)
        canvas *= np.clip(grad, 0.55, 1.4)[..., None]

        area = cw * ch / (320 * 240)
        count = int(rng.integers(cfg.clutter[0], cfg.clutter[1] + 1) * (1.3 if style == "table" else 1.0) * area ** 0.5)
        if style == "photo":
            count = count // 2
        if rng.random() < 0.4 and style != "table":  # long straight structures: poles, frames, edges
            for _ in range(int(rng.integers(1, 4))):
                vertical = rng.random() < 0.6
                thick = _log_uniform(rng, 3, 0.12 * min(cw, ch))
                length = max(cw, ch) * 1.5
                sw, sh = (thick, length) if vertical else (length, thick)
                sprite, _, _ = _object_sprite(rng, bank, "rounded_rect", min(sw, 600), min(sh, 600), shade=0.3)
                aff = _affine((rng.uniform(0, cw), rng.uniform(0, ch)), (sw / sprite.shape[1], sh / sprite.shape[0]),
                              rng.normal(0, 0.05), ((sprite.shape[1] - 1) / 2, (sprite.shape[0] - 1) / 2))
                _paste(canvas, sprite, aff, shadow=(3.0, 3.0, 2.0, rng.uniform(0.1, 0.4)))
        size_hi = 0.3 * min(cw, ch)
        t_size = math.sqrt(self.t_box0[0] * self.t_box0[1])
        for _ in range(count):
            kind = _weighted_choice(rng, {"ellipse": 1.0, "blob": 1.2, "rounded_rect": 1.5, "polygon": 1.0,
                                          "person": 0.3 if style != "table" else 0.0})
            size = _log_uniform(rng, 6.0, size_hi) if rng.random() < 0.6 else t_size * _log_uniform(rng, 0.5, 2.0)
            size = min(size, size_hi)
            asp = _log_uniform(rng, 0.3, 3.0)
            w, h = size * math.sqrt(asp), size / math.sqrt(asp)
            centre = (rng.uniform(0, cw), rng.uniform(0, ch))
            shadow = (rng.uniform(0.02, 0.15) * size, rng.uniform(0.02, 0.15) * size, 0.08 * size, rng.uniform(0.2, 0.5)) \
                if rng.random() < 0.7 else None
            if kind == "person":
                person = _PersonSprite(rng, bank, int(min(300, max(24, size * 1.6))))
                sprite = person.sprite(rng.uniform(0, 2 * np.pi), rng.uniform(0, 1))
                s = size * 1.6 / person.h
                aff = _affine(centre, (s, s), rng.normal(0, 0.03), ((person.w - 1) / 2, (person.h - 1) / 2))
            else:
                sprite, _, _ = _object_sprite(rng, bank, kind, min(w, 400), min(h, 400), shade=rng.uniform(0.1, 0.9))
                aff = _affine(centre, (w / sprite.shape[1], h / sprite.shape[0]), rng.uniform(-np.pi, np.pi),
                              ((sprite.shape[1] - 1) / 2, (sprite.shape[0] - 1) / 2))
            _paste(canvas, sprite, aff, shadow=shadow)
        if self.flags["lookalike_clutter"] and self.kind != "person":
            for _ in range(int(rng.integers(1, 3))):
                tex = _jitter_colour(rng, self.target_texture, rng.uniform(0.0, 0.5))
                sprite, _, _ = _object_sprite(rng, bank, self.kind, tex.shape[1], tex.shape[0], texture=tex)
                s = t_size * _log_uniform(rng, 0.7, 1.3) / math.sqrt(sprite.shape[0] * sprite.shape[1])
                centre = self._far_start(t_size, [(self.t_centre[0] + 0.0, t_size)])
                q = self.frame_to_world(0, centre)
                _paste(canvas, sprite, _affine(q, (s, s), rng.uniform(-0.5, 0.5),
                                               ((sprite.shape[1] - 1) / 2, (sprite.shape[0] - 1) / 2)))
        self.canvas = canvas

    # -- photometry ---------------------------------------------------------------------------------------

    def _plan_photometry(self) -> None:
        rng, n, W, H = self.rng, self.n, self.W, self.H
        f = self.flags
        if f["illumination"]:
            self.log_gain = _walk(rng, n, rng.uniform(0.1, 0.45), rng.uniform(4, 15)) + rng.normal(0, 0.1)
            if rng.random() < 0.3 and n > 6:  # a sudden change (light switched, auto exposure)
                t0 = int(rng.integers(2, n - 2))
                self.log_gain += rng.choice([-1, 1]) * rng.uniform(0.15, 0.4) * _ramp(n, t0, t0 + 3, n, n + 1)
            self.contrast = np.exp(_walk(rng, n, rng.uniform(0.05, 0.25), 10.0) + rng.normal(0, 0.08))
            self.wb = np.exp(np.stack([_walk(rng, n, rng.uniform(0, 0.08), 12.0) for _ in range(3)], 1))
        else:
            self.log_gain = np.full(n, rng.normal(0, 0.08))
            self.contrast = np.ones(n)
            self.wb = np.ones((n, 3))
        self.field = None
        if f["shadow"] and not self.cfg.flat_background:
            fw, fh = max(8, self.cw // 4), max(8, self.ch // 4)
            field = np.ones((fh, fw), np.float32)
            for _ in range(int(rng.integers(1, 4))):
                mask = _shape_mask(rng, _weighted_choice(rng, {"blob": 1, "polygon": 1, "rounded_rect": 0.5}),
                                   int(rng.uniform(0.3, 1.2) * fw), int(rng.uniform(0.3, 1.2) * fh), self.bank)
                blob = np.zeros_like(field)
                mh, mw = mask.shape
                x0, y0 = int(rng.integers(-mw // 2, fw - mw // 2)), int(rng.integers(-mh // 2, fh - mh // 2))
                xs, ys = slice(max(0, x0), min(fw, x0 + mw)), slice(max(0, y0), min(fh, y0 + mh))
                blob[ys, xs] = mask[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0]
                blob = cv2.GaussianBlur(blob, (0, 0), rng.uniform(0.5, 4.0))
                field *= 1.0 - rng.uniform(0.25, 0.6) * blob
            if rng.random() < 0.5:  # a pool of light
                yy, xx = np.mgrid[0:fh, 0:fw].astype(np.float32)
                c = rng.uniform(0, 1, 2) * (fw, fh)
                r = rng.uniform(0.3, 1.0) * max(fw, fh)
                field *= 1.0 + rng.uniform(0.1, 0.4) * np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (r * r))
            self.field = field
            drift = rng.normal(0, 0.6, 2) if rng.random() < 0.35 else np.zeros(2)  # clouds / moving shade
            self.field_drift = np.arange(n)[:, None] * drift[None, :]
        self.vignette = None
        if f["vignette"]:
            yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
            r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
            self.vignette = (1.0 - rng.uniform(0.1, 0.4) * r2 / 2).astype(np.float32)
        self.defocus = np.clip(_walk(rng, n, 1.0, 8.0) * rng.uniform(0.5, 1.8) + rng.uniform(0, 1.0), 0, 2.5) \
            if f["defocus"] else None
        self.gray = f["grayscale"]
        if f["noise"]:
            self.noise_a = rng.uniform(1.0, 30.0)  # read noise variance (gray levels^2)
            self.noise_b = rng.uniform(0.0, 0.25)  # shot noise gain
            c = 1 if self.gray else 3
            pad = 16
            self.noise_bank = [rng.standard_normal((H + pad, W + pad, c), dtype=np.float32) for _ in range(2)]
        self.jpeg_q = int(rng.integers(self.cfg.jpeg_quality[0], self.cfg.jpeg_quality[1] + 1)) if f["jpeg"] else None

    # -- rendering ----------------------------------------------------------------------------------------

    def render(self) -> SyntheticSequence:
        n, W, H, rng = self.n, self.W, self.H, self.rng
        frames = np.empty((n, H, W, 3), np.uint8)
        sil = np.full((n, 4), np.nan)
        vis = np.zeros(n)
        inframe = np.zeros(n)
        cam_kernel_scale = self.exposure
        for t in range(n):
            if self.cam_static and not self.flags["camera_shake"]:
                img = self.canvas.copy()
            else:
                img = cv2.warpAffine(self.canvas, self.cam[t], (W, H), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101)
                k = _line_kernel(*(self.cam_velocity[t] * cam_kernel_scale)) if cam_kernel_scale > 0 else None
                if k is not None:
                    img = cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT_101)
            for layer in self.layers_behind:
                layer.paste(img, t)
            pasted, area = self.target.paste(img, t)
            transmit = None
            if pasted is not None:
                transmit = np.ones_like(pasted.alpha)
            for layer in self.layers_front:
                other, _ = layer.paste(img, t)
                if other is not None and transmit is not None:
                    ax0, ay0 = max(pasted.x0, other.x0), max(pasted.y0, other.y0)
                    ax1 = min(pasted.x0 + pasted.alpha.shape[1], other.x0 + other.blurred.shape[1])
                    ay1 = min(pasted.y0 + pasted.alpha.shape[0], other.y0 + other.blurred.shape[0])
                    if ax1 > ax0 and ay1 > ay0:
                        transmit[ay0 - pasted.y0: ay1 - pasted.y0, ax0 - pasted.x0: ax1 - pasted.x0] *= (
                            1.0 - other.blurred[ay0 - other.y0: ay1 - other.y0, ax0 - other.x0: ax1 - other.x0])
            if pasted is not None and area > 0:
                a = pasted.alpha
                inside = float(a.sum())
                inframe[t] = min(1.0, inside / area)
                vis[t] = min(1.0, float((a * transmit).sum()) / area)
                ys = np.flatnonzero((a >= 0.5).any(1))
                xs = np.flatnonzero((a >= 0.5).any(0))
                if len(xs) and len(ys):
                    sil[t] = (pasted.x0 + xs[0], pasted.y0 + ys[0], xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1)
            frames[t] = self._finish(img, t, rng)
        absent = (vis < ABSENT_FRACTION) | ~np.isfinite(sil).all(1)
        cover = np.where(absent, 0, np.clip(np.ceil(vis * 8 - 1e-6), 1, 8)).astype(np.int64)
        boxes = sil.copy()
        last = None
        for t in range(n):
            if absent[t]:
                if last is not None:
                    boxes[t] = last
            else:
                last = boxes[t].copy()
        if not absent.all():  # absent frames before any visible one take the first visible box
            first = int(np.flatnonzero(~absent)[0])
            boxes[:first] = boxes[first]
        else:
            boxes[:] = 0.0
        return SyntheticSequence(frames=frames, boxes=boxes.astype(np.float64), absent=absent.astype(bool),
                                 cover=cover, visible_fraction=vis, in_frame=inframe, silhouette_boxes=sil,
                                 info=self.info)

    def _finish(self, img: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        """Lighting, optics and sensor: the frame as a camera would record it."""
        W, H = self.W, self.H
        gain = math.exp(self.log_gain[t]) * self.contrast[t] * self.wb[t]
        mult = None
        if self.field is not None:
            cam = self.cam[t]
            fx, fy = self.field.shape[1] / self.cw, self.field.shape[0] / self.ch
            # frame pixel -> canvas -> field: build the field->small-frame map
            m = cam.copy()
            m[:, 2] = cam[:, 2] + cam[:, :2] @ self.field_drift[t]
            lin = m[:, :2] @ np.diag([1 / fx, 1 / fy]) * 0.25
            small = (max(2, W // 4), max(2, H // 4))
            ms = np.hstack([lin, (m[:, 2] * 0.25)[:, None]])
            f = cv2.warpAffine(self.field, ms, small, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            mult = cv2.resize(f, (W, H), interpolation=cv2.INTER_LINEAR)
        if self.vignette is not None:
            mult = self.vignette if mult is None else mult * self.vignette
        if mult is not None:
            img *= mult[..., None] * gain.astype(np.float32)
        else:
            img *= gain.astype(np.float32)
        img += np.float32(128.0 * (1.0 - self.contrast[t]))
        if self.defocus is not None and self.defocus[t] > 0.3:
            img = cv2.GaussianBlur(img, (0, 0), float(self.defocus[t]))
        if self.gray:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None]
        if self.flags["noise"]:
            nb = self.noise_bank[t % 2]
            ox = int(rng.integers(0, nb.shape[1] - W + 1))
            oy = int(rng.integers(0, nb.shape[0] - H + 1))
            noise = nb[oy: oy + H, ox: ox + W]
            luma = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.shape[2] == 3 else img[..., 0]
            sigma = cv2.sqrt(np.maximum(luma, 0.0) * np.float32(self.noise_b) + np.float32(self.noise_a))
            img = img + noise * sigma[..., None]
        out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        if out.shape[2] == 1:
            out = np.repeat(out, 3, axis=2)
        if self.jpeg_q is not None:
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(out[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_q])
            if ok:
                out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        return out


# ----------------------------------------------------------------------------- public generation API


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    values = [seed] if isinstance(seed, (int, np.integer)) else list(seed)
    try:
        values = [int(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(f"seed must be a non-negative integer or a sequence of them, got {seed!r}") from None
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"seed must be a non-negative integer or a sequence of them, got {seed!r}")
    return np.random.SeedSequence(values)


def generate_sequence(seed: int | Seq[int], config: SyntheticConfig | None = None) -> SyntheticSequence:
    """One synthetic sequence, fully determined by ``seed`` (an int or a tuple of ints) and ``config``.

    The first frame always shows the target.  No global random state is read or changed.
    """
    cfg = SyntheticConfig() if config is None else config
    if not isinstance(cfg, SyntheticConfig):
        raise ConfigError(f"config must be a SyntheticConfig, got {type(cfg).__name__}")
    cfg.validate()
    rng = np.random.default_rng(_seed_sequence(seed))
    bank = texture_bank(cfg.extra_materials)
    seq = None
    for _ in range(10):
        seq = _Scene(rng, cfg, bank).render()
        if not seq.absent[0]:
            break
    assert seq is not None
    seq.info["seed"] = seed if isinstance(seed, (int, np.integer)) else list(seed)
    return seq


# ----------------------------------------------------------------------------- GOT-10k writer

_SPLIT_PREFIX = {"train": "GOT-10k_Train", "val": "GOT-10k_Val", "test": "GOT-10k_Test"}
_ANNOTATION_FILES = ("groundtruth.txt", "absence.label", "cover.label", "meta_info.ini")


def _split_prefix(split_name: str) -> str:
    if not split_name or not str(split_name).replace("_", "").isalnum():
        raise ConfigError(f"split_name must be a simple word such as 'train', got {split_name!r}")
    return _SPLIT_PREFIX.get(split_name.lower(), f"GOT-10k_{split_name.capitalize()}")


def _sequence_seed(seed: int, index: int, split_name: str) -> tuple[int, ...]:
    """Sequence ``index`` (1-based, as in its folder name) of a ``train`` set uses (seed, index);
    other splits add a split-specific salt so that they never repeat training sequences."""
    if split_name.lower() == "train":
        return (int(seed), int(index))
    return (int(seed), int(index), zlib.crc32(split_name.lower().encode()))


def _meta_info(seq: SyntheticSequence, cfg: SyntheticConfig, url: str) -> str:
    n = len(seq)
    speed = float(seq.info.get("speed", 0.0))
    adverb = "slowly" if speed < 1.5 else ("fast" if speed > 4 else "steadily")
    motion = "walking" if seq.info.get("shape") == "person" else "moving"
    lines = [
        "[METAINFO]",
        f"url: {url}",
        "begin_time: 0.00",
        f"end_time: {n / 10:.2f}",
        "anno_fps: 10Hz",
        "object_class: synthetic",
        f"motion_class: {motion}",
        f"major_class: {seq.info.get('shape', 'object')}",
        "root_class: synthetic",
        f"motion_adverb: {adverb}",
        f"resolution: ({cfg.width}, {cfg.height})",
    ]
    return "\n".join(lines) + "\n"


def _sequence_url(seed: int, index: int, split_name: str, cfg: SyntheticConfig) -> str:
    return f"synthetic://mixformerv2/{split_name}/seed={seed}/index={index}/config={cfg.fingerprint()}"


def _is_complete(folder: Path, url: str | None = None) -> bool:
    """A finished sequence folder: all annotation files, consistent line counts, every frame."""
    if not folder.is_dir():
        return False
    try:
        lines = {name: (folder / name).read_text().splitlines() for name in _ANNOTATION_FILES}
    except (OSError, UnicodeDecodeError):
        return False
    n = len([ln for ln in lines["groundtruth.txt"] if ln.strip()])
    if n == 0 or any(len([ln for ln in lines[k] if ln.strip()]) != n for k in ("absence.label", "cover.label")):
        return False
    if url is not None and (len(lines["meta_info.ini"]) < 2 or lines["meta_info.ini"][1].strip() != f"url: {url}"):
        return False
    for j in range(1, n + 1):
        f = folder / f"{j:08d}.jpg"
        try:
            if f.stat().st_size == 0:
                return False
        except OSError:
            return False
    return not (folder / f"{n + 1:08d}.jpg").exists()


def _write_sequence_files(folder: Path, seq: SyntheticSequence, cfg: SyntheticConfig, url: str, quality: int = 90) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for j, frame in enumerate(seq.frames, start=1):
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise InputError(f"could not encode frame {j} of {folder.name}")
        (folder / f"{j:08d}.jpg").write_bytes(buf.tobytes())
    (folder / "groundtruth.txt").write_text("".join(f"{x:.4f},{y:.4f},{w:.4f},{h:.4f}\n" for x, y, w, h in seq.boxes))
    (folder / "absence.label").write_text("".join(f"{int(a)}\n" for a in seq.absent))
    (folder / "cover.label").write_text("".join(f"{int(c)}\n" for c in seq.cover))
    (folder / "meta_info.ini").write_text(_meta_info(seq, cfg, url))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_one(job: tuple[str, int, int, SyntheticConfig, str]) -> tuple[int, bool]:
    """Write sequence ``index`` unless a complete copy exists; returns (index, written)."""
    root_s, index, seed, cfg, split_name = job
    root = Path(root_s)
    name = f"{_split_prefix(split_name)}_{index:06d}"
    final = root / name
    url = _sequence_url(seed, index, split_name, cfg)
    if _is_complete(final, url):
        return index, False
    seq = generate_sequence(_sequence_seed(seed, index, split_name), cfg)
    tmp = root / f".tmp_{name}_{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    _write_sequence_files(tmp, seq, cfg, url)
    if final.exists():  # a half-written or stale sequence: replace it
        shutil.rmtree(final)
    os.rename(tmp, final)
    return index, True


def _worker_init() -> None:
    cv2.setNumThreads(1)


def write_got10k(root: str | os.PathLike, num_sequences: int, seed: int = 0, config: SyntheticConfig | None = None,
                 split_name: str = "train", workers: int = 1, progress: bool = True) -> Path:
    """Write ``num_sequences`` synthetic sequences in GOT-10k's layout under ``root``; returns ``root``.

    ``<root>/list.txt`` names the folders ``GOT-10k_Train_000001`` ... (1-based); each holds
    ``00000001.jpg`` ... (JPEG quality 90), ``groundtruth.txt`` (x,y,w,h, 4 decimals; absent
    frames repeat the last visible box), ``absence.label``, ``cover.label`` and
    ``meta_info.ini`` (``object_class: synthetic``).  Folder ``i`` is
    ``generate_sequence((seed, i), config)`` for the train split, so any subset can be remade.

    Resumable: complete folders made with the same seed and config are kept; every sequence is
    written to a hidden temporary folder and renamed into place, so an interrupted run never
    leaves a half-written sequence (and one found, e.g. from another tool, is replaced).
    """
    cfg = SyntheticConfig() if config is None else config
    if not isinstance(cfg, SyntheticConfig):
        raise ConfigError(f"config must be a SyntheticConfig, got {type(cfg).__name__}")
    cfg.validate()
    if int(num_sequences) < 0:
        raise ConfigError(f"num_sequences must be >= 0, got {num_sequences}")
    if int(seed) < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    prefix = _split_prefix(split_name)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp_*"):  # left behind by killed runs
        pid = stale.name.rsplit("_", 1)[-1]
        if stale.is_dir() and (not pid.isdigit() or not _pid_alive(int(pid)) or int(pid) == os.getpid()):
            shutil.rmtree(stale, ignore_errors=True)
    total = int(num_sequences)
    jobs = [(str(root), i, int(seed), cfg, split_name) for i in range(1, total + 1)
            if not _is_complete(root / f"{prefix}_{i:06d}", _sequence_url(int(seed), i, split_name, cfg))]
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    bar = (tqdm(total=total, initial=total - len(jobs), desc=f"synthetic {split_name}", unit="seq",
                disable=not progress) if tqdm else None)
    written = 0
    try:
        if int(workers) <= 1 or len(jobs) <= 1:
            for job in jobs:
                written += _write_one(job)[1]
                if bar is not None:
                    bar.update(1)
        else:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(int(workers), initializer=_worker_init) as pool:
                for _, did in pool.imap_unordered(_write_one, jobs, chunksize=1):
                    written += did
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    listing = root / "list.txt"
    tmp = root / f".list.txt.{os.getpid()}"
    tmp.write_text("".join(f"{prefix}_{i:06d}\n" for i in range(1, int(num_sequences) + 1)))
    os.replace(tmp, listing)
    return root


# ----------------------------------------------------------------------------- video clip


def write_clip(path_mp4: str | os.PathLike, seed: int | Seq[int], config: SyntheticConfig | None = None,
               fps: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Render one sequence (``demo_config()`` when ``config`` is None) to an .mp4 (mp4v).

    Returns ``(boxes, absent)``: (N, 4) float64 x, y, w, h and (N,) bool.
    """
    cfg = demo_config() if config is None else config
    seq = generate_sequence(seed, cfg)
    path = Path(path_mp4)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (cfg.width, cfg.height))
    if not writer.isOpened():
        raise InputError(f"cannot open a video writer for {path} (mp4v)")
    try:
        for frame in seq.frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
    finally:
        writer.release()
    return seq.boxes.copy(), seq.absent.copy()
