"""The VOT toolkit (``vot-toolkit`` 0.9) running MixFormerV2.

Two ways in, both registered in a workspace's ``trackers.ini`` by :func:`write_trackers_ini`:

* **TraX** (protocols ``traxpython`` and ``trax``; needs ``pip install vot-trax``): this module
  is a TraX server, ``python -m mixformerv2.evaluation.integrations.vot [--weights W]
  [--preset P] [--device D] [--dataset NAME] [--multiobject]``. Its handshake offers region
  formats rectangle / polygon / mask (a polygon or mask target is tracked as its axis-aligned
  bounding box), images as file paths (also memory / encoded buffers), channel ``color``. On
  *initialize* it reads the image (:func:`mixformerv2.tracking.video.read_image`: RGB, gray and
  16-bit converted) and starts the tracker; on *frame* it reports the box as a rectangle with a
  ``confidence`` property (the score head's probability; 1.0 for a model without score head).
  Several initialize requests in one session restart the tracker (one process serves a whole
  experiment). Options fall back to the environment variables ``MIXFORMERV2_WEIGHTS``,
  ``MIXFORMERV2_PRESET``, ``MIXFORMERV2_DEVICE``, ``MIXFORMERV2_DATASET`` and
  ``MIXFORMERV2_MULTIOBJECT``: the toolkit's ``traxpython`` protocol runs a bare module name
  without arguments, so ``trackers.ini`` passes the settings as ``env_*`` entries.
* **python** (the toolkit's in-process ``python`` protocol, new in 0.9): :class:`VOTPythonTracker`.

Typical use::

    vot initialize vot2022/shorttermbox --workspace ws
    python -c "from mixformerv2.evaluation.integrations import write_trackers_ini; \
               write_trackers_ini('ws', 'MixFormerV2', weights='mixformerv2_base.pth.tar')"
    vot evaluate --workspace ws MixFormerV2
    vot analysis --workspace ws MixFormerV2

Nothing imports ``trax`` or ``vot`` before a server starts; missing packages raise
:class:`~mixformerv2.errors.MixFormerError` saying what to install.
"""

from __future__ import annotations

import argparse
import configparser
import math
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...fileio import atomic_write
from ...errors import ConfigError, InputError, MixFormerError
from ...geometry import normalize_frame

__all__ = [
    "MODULE",
    "VOTPythonTracker",
    "load_tracker",
    "main",
    "run_trax_server",
    "trackers_ini_entry",
    "write_trackers_ini",
]

MODULE = "mixformerv2.evaluation.integrations.vot"
PROTOCOLS = ("traxpython", "trax", "python")
ENV_PREFIX = "MIXFORMERV2_"
_IDENTIFIER = re.compile(r"^[a-zA-Z0-9_-]+$")  # vot-toolkit's tracker identifier rule


# -- model ----------------------------------------------------------------------------------------
def load_tracker(
    weights: str | os.PathLike | None = None,
    preset: str | None = None,
    device: str = "cpu",
    dataset: str | None = None,
):
    """A :class:`mixformerv2.Tracker` from a checkpoint (None = the model shipped with the package)."""
    from ...tracking.tracker import Tracker

    if weights is None or str(weights) == "":
        from ...demo import default_weights

        weights = default_weights()
    return Tracker.from_checkpoint(weights, preset=preset or None, device=device or "cpu", dataset=dataset or None)


def _confidence(score: float) -> float:
    return float(score) if math.isfinite(score) else 1.0


def _xywh(values: Sequence[float]) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in values)
    return x, y, w, h


def _bounds_of_points(points: np.ndarray) -> tuple[float, float, float, float]:
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) == 0 or not np.isfinite(points).all():
        raise InputError(f"polygon target has no usable points: {points.tolist()}")
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def _bounds_of_mask(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> tuple[float, float, float, float]:
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise InputError("mask target is empty: nothing to track")
    x0, x1, y0, y1 = cols.min(), cols.max(), rows.min(), rows.max()
    return float(x0 + offset[0]), float(y0 + offset[1]), float(x1 - x0 + 1), float(y1 - y0 + 1)


# -- TraX -----------------------------------------------------------------------------------------
def _import_trax():
    try:
        import trax  # noqa: F401  (vot-trax)
        import trax.server  # noqa: F401
    except ImportError as exc:
        raise MixFormerError(f"the TraX library is not installed: `pip install vot-trax` ({exc})") from None
    except OSError as exc:  # libtrax.so missing or unloadable in a broken install
        raise MixFormerError(f"the TraX library cannot be loaded: {exc}; reinstall `vot-trax`") from None
    return trax


def _box_from_trax_region(region: Any) -> tuple[float, float, float, float]:
    from trax.region import Region

    kind = region.type
    if kind == Region.RECTANGLE:
        return _xywh(region.bounds())
    if kind == Region.POLYGON:
        return _bounds_of_points([region.get(i) for i in range(region.size())])
    if kind == Region.MASK:
        return _bounds_of_mask(region.array(), region.offset())
    raise InputError(f"cannot initialise on a TraX region of type {kind!r}")


def _frame_from_trax_image(image: Any) -> np.ndarray:
    from trax.image import Image

    kind = image.type()
    if kind == Image.PATH:
        from ...tracking.video import read_image

        return read_image(image.path())
    if kind == Image.MEMORY:
        return normalize_frame(image.array())  # RGB, gray8 or gray16 rows
    if kind == Image.BUFFER:
        import cv2

        data = np.frombuffer(bytes(image.buffer()), dtype=np.uint8)
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if decoded is None:
            raise InputError("cannot decode the encoded image sent over TraX")
        from ...tracking.video import _bgr_to_rgb

        return _bgr_to_rgb(decoded)
    raise InputError(f"unsupported TraX image type {kind!r} (send file paths)")


def run_trax_server(tracker, multiobject: bool = False, log: bool | str = False, name: str = "MixFormerV2") -> None:
    """Serve one TraX session on stdin/stdout (or ``TRAX_SOCKET``) until the client quits.

    ``tracker`` is a :class:`mixformerv2.Tracker`. Single-object (default): one region per
    initialize request. ``multiobject``: all targets of a request are tracked with one batched
    network step per frame; targets cannot be added after initialization.
    """
    _import_trax()
    from trax import TraxStatus
    from trax.image import Image, ImageChannel
    from trax.region import Rectangle, Region
    from trax.server import Server

    description = f"MixFormerV2 ({tracker.model_config.search_size}px search, depth {tracker.model_config.depth})"
    server = Server(
        [Region.RECTANGLE, Region.POLYGON, Region.MASK],
        [Image.PATH, Image.MEMORY, Image.BUFFER],
        [ImageChannel.COLOR],
        tracker_name=name,
        tracker_description=description,
        tracker_family="MixFormerV2",
        log=log,
        multiobject=multiobject,
    )
    with server:
        initialized = False
        while True:
            request = server.wait()
            if request.type == TraxStatus.QUIT:
                break
            if ImageChannel.COLOR not in request.image:
                raise InputError(f"the client sent no color image (channels: {sorted(request.image)})")
            frame = _frame_from_trax_image(request.image[ImageChannel.COLOR])
            if request.type == TraxStatus.INITIALIZE:
                boxes = [_box_from_trax_region(region) for region, _ in request.objects]
                if not boxes:
                    raise InputError("initialize request without a target")
                if len(boxes) > 1 and not multiobject:
                    raise InputError(f"{len(boxes)} targets sent to a single-object server (start it with --multiobject)")
                tracker.init_targets(frame, boxes)
                initialized = True
                status = [(Rectangle.create(*box), {"confidence": 1.0}) for box in boxes]
            elif request.type == TraxStatus.FRAME:
                if not initialized:
                    raise InputError("frame request before initialize")
                if request.objects:
                    raise InputError("adding targets after initialization is not supported")
                results = tracker.track_targets(frame)
                status = [(Rectangle.create(*r.box), {"confidence": _confidence(r.score)}) for r in results]
            else:
                raise MixFormerError(f"unexpected TraX request {request.type!r}")
            server.status(status)


# -- the toolkit's python protocol -----------------------------------------------------------------
def _frame_from_vot(frame: Any) -> np.ndarray:
    """A frame as vot-toolkit's python runtime sends it: a file name, or {channel: image}."""
    if isinstance(frame, dict):
        if "color" not in frame:
            raise InputError(f"no color channel in the frame (channels: {sorted(frame)})")
        frame = frame["color"]
    if isinstance(frame, (str, os.PathLike)):
        from ...tracking.video import read_image

        return read_image(frame)
    return normalize_frame(np.asarray(frame))


def _box_from_vot(region: Any) -> tuple[float, float, float, float]:
    """A region as vot-toolkit's python runtime encodes it (``convert = rectangle`` recommended)."""
    if isinstance(region, tuple) and len(region) == 2 and isinstance(region[1], dict):
        region = region[0]  # (region, properties)
    if hasattr(region, "x") and hasattr(region, "width"):  # a vot.region.Rectangle
        return _xywh((region.x, region.y, region.width, region.height))
    if isinstance(region, tuple) and len(region) == 4:
        return _xywh(region)
    if isinstance(region, list) and region and all(isinstance(p, tuple) and len(p) == 2 for p in region):
        return _bounds_of_points(region)
    array = np.asarray(region)
    if array.ndim == 2 and array.shape[0] > 0 and array.shape[1] > 2:
        return _bounds_of_mask(array)
    raise InputError(f"cannot initialise on region {region!r}")


class VOTPythonTracker:
    """The tracker object vot-toolkit's ``python`` protocol drives (one target).

    ``trackers.ini``: ``protocol = python``, ``command = mixformerv2.evaluation.integrations.vot:VOTPythonTracker``,
    ``arg_weights = ...`` (and ``arg_preset`` / ``arg_device`` / ``arg_dataset``), ``convert = rectangle``.
    """

    multiobject = False

    def __init__(self, weights: str | None = None, preset: str | None = None, device: str = "cpu", dataset: str | None = None) -> None:
        self.tracker = load_tracker(weights, preset, device, dataset)

    def init(self, frame: Any, new: Any = None, properties: dict | None = None):
        if new is None:
            raise InputError("no target to initialise on")
        box = _box_from_vot(new)
        self.tracker.init(_frame_from_vot(frame), box)
        return box, {"confidence": 1.0}

    def update(self, frame: Any, new: Any = None, properties: dict | None = None):
        if new:  # an empty list means "no new targets"
            raise InputError("adding targets after initialization is not supported")
        result = self.tracker.track(_frame_from_vot(frame))
        return _xywh(result.box), {"confidence": _confidence(result.score)}


# -- trackers.ini ---------------------------------------------------------------------------------
def _package_root() -> Path:
    """The folder that holds the ``mixformerv2`` package (``src`` in a checkout)."""
    return Path(__file__).resolve().parents[3]


def trackers_ini_entry(
    weights: str | os.PathLike | None = None,
    preset: str | None = None,
    device: str = "cpu",
    dataset: str | None = None,
    protocol: str = "traxpython",
    python: str | os.PathLike | None = None,
    label: str | None = None,
    timeout: int | None = None,
    multiobject: bool = False,
) -> dict[str, str]:
    """The ``trackers.ini`` keys of one MixFormerV2 entry (unescaped values)."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if weights is not None and str(weights) != "":
        weights_path = Path(weights).expanduser().resolve()
        if not weights_path.is_file():
            raise ConfigError(f"{weights_path}: no such checkpoint")
        weights = str(weights_path)
    else:
        weights = None
    if multiobject and protocol == "python":
        raise ConfigError("the python protocol entry is single-object; use traxpython or trax for --multiobject")
    python = str(Path(python).expanduser().absolute()) if python else sys.executable
    root = str(_package_root())
    settings = {"weights": weights, "preset": preset, "device": device, "dataset": dataset}
    entry: dict[str, str] = {"label": label or "MixFormerV2", "protocol": protocol}
    if protocol == "traxpython":
        entry["command"] = MODULE  # the toolkit runs `<python> -m MODULE`, without arguments
        entry["python"] = python
        entry["paths"] = root  # PYTHONPATH of the tracker process
        for key, value in settings.items():
            if value:
                entry[f"env_{ENV_PREFIX}{key.upper()}"] = str(value)
        if multiobject:
            entry[f"env_{ENV_PREFIX}MULTIOBJECT"] = "1"
    elif protocol == "trax":
        args = [python, "-m", MODULE]
        for key, value in settings.items():
            if value:
                args += [f"--{key}", str(value)]
        if multiobject:
            args.append("--multiobject")
        entry["command"] = shlex.join(args)
        entry["env_PYTHONPATH"] = root
    else:  # python: runs in a process spawned from the toolkit's own interpreter
        entry["command"] = f"{MODULE}:VOTPythonTracker"
        entry["convert"] = "rectangle"
        for key, value in settings.items():
            if value:
                entry[f"arg_{key}"] = str(value)
    if timeout is not None:
        entry["timeout"] = str(int(timeout))
    return entry


def write_trackers_ini(workspace: str | os.PathLike, name: str = "MixFormerV2", **options: Any) -> Path:
    """Add (or replace) the ``[name]`` entry of ``<workspace>/trackers.ini``; returns the file.

    ``workspace``: a vot-toolkit workspace folder or an ``.ini`` file. Other entries are kept
    (comments are not). ``options`` are those of :func:`trackers_ini_entry` (label defaults to
    ``name``): ``weights`` None = the model shipped with the package. ``protocol``:
    ``traxpython`` (default: ``python`` = this interpreter unless given, ``paths`` = the folder
    holding the package, settings as ``env_MIXFORMERV2_*``), ``trax`` (an explicit command
    line) or ``python`` (the toolkit's in-process protocol: the toolkit's interpreter must be
    able to import ``mixformerv2``). ``timeout``: seconds the toolkit waits for each reply
    (its default is 30; loading a large model on a slow CPU may need more).
    """
    if not _IDENTIFIER.match(name):
        raise ConfigError(f"tracker name {name!r} is not a vot-toolkit identifier (letters, digits, '-', '_')")
    if options.get("label") is None:
        options["label"] = name
    entry = trackers_ini_entry(**options)
    target = Path(workspace)
    path = target if target.suffix.lower() == ".ini" else target / "trackers.ini"
    if not path.parent.is_dir():
        raise ConfigError(f"{path.parent}: no such folder (initialize the workspace first)")
    parser = configparser.ConfigParser(interpolation=None)  # raw values: the toolkit's `%` escapes stay
    parser.optionxform = str  # keep key case as written (the toolkit lower-cases when it reads)
    if path.is_file():
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise ConfigError(f"{path}: cannot parse ({exc})") from None
    if parser.has_section(name):
        parser.remove_section(name)
    parser.add_section(name)
    for key, value in entry.items():
        # the toolkit reads with basic interpolation: a literal % is written as %%
        parser.set(name, key, value.replace("%", "%%"))
    return atomic_write(path, parser.write, binary=False)


# -- command line ---------------------------------------------------------------------------------
def _env(key: str) -> str | None:
    value = os.environ.get(ENV_PREFIX + key)
    return value if value else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="MixFormerV2 TraX server for the VOT toolkit (run by the toolkit, it talks TraX on stdin/stdout).",
    )
    parser.add_argument("--weights", default=_env("WEIGHTS"), help="checkpoint (default: $MIXFORMERV2_WEIGHTS, else the shipped model)")
    parser.add_argument("--preset", default=_env("PRESET"), help="architecture preset for official checkpoints ($MIXFORMERV2_PRESET)")
    parser.add_argument("--device", default=_env("DEVICE") or "cpu", help="torch device (default: $MIXFORMERV2_DEVICE or cpu)")
    parser.add_argument("--dataset", default=_env("DATASET"), help="benchmark settings of the official scripts, e.g. vot20 ($MIXFORMERV2_DATASET)")
    parser.add_argument(
        "--multiobject",
        action="store_true",
        default=(_env("MULTIOBJECT") or "0").lower() in ("1", "true", "yes", "on"),
        help="accept several targets per sequence ($MIXFORMERV2_MULTIOBJECT=1)",
    )
    parser.add_argument("--name", default="MixFormerV2", help="tracker name sent in the handshake")
    parser.add_argument("--trax-log", default=None, help="write the TraX protocol log to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if "TRAX" not in os.environ and "TRAX_SOCKET" not in os.environ and sys.stdin.isatty():
        print(
            f"{MODULE} is a TraX server: the VOT toolkit starts it (see write_trackers_ini); "
            "it waits for a TraX client on stdin/stdout.",
            file=sys.stderr,
        )
    try:
        _import_trax()
        tracker = load_tracker(args.weights, args.preset, args.device, args.dataset)
        run_trax_server(tracker, multiobject=args.multiobject, log=args.trax_log or False, name=args.name)
    except MixFormerError as exc:
        print(f"mixformerv2 vot: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from trax import TraxException

        if not isinstance(exc, TraxException):
            raise
        print(f"mixformerv2 vot: TraX session ended with an error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
