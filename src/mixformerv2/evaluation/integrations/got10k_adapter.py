"""The GOT-10k toolkit (``pip install got10k``) running MixFormerV2.

    from got10k.experiments import ExperimentOTB
    from mixformerv2.evaluation.integrations import MixFormerV2GOT10k

    tracker = MixFormerV2GOT10k(weights="mixformerv2_base.pth.tar", dataset="otb")
    experiment = ExperimentOTB("data/OTB", version=2015)
    experiment.run(tracker)
    experiment.report([tracker.name])

The toolkit opens every frame with PIL and hands the ``PIL.Image`` to ``init`` / ``update``.
Some benchmarks hold grayscale sequences (OTB: Car4, David, Dudek, ... are mode ``'L'``),
and PIL images come in many modes; :func:`frame_from_image` turns each into the contiguous
RGB uint8 array our tracker takes: ``'L'`` is replicated to three channels, ``'RGBA'`` loses
its alpha, 16-bit (``'I;16*'``, and ``'I'`` holding 16-bit values) is scaled to 8 bit as
:func:`mixformerv2.geometry.normalize_frame` does. got10k's own ``Tracker.track`` would first
``convert('RGB')`` every non-RGB image, which clips 16-bit values at 255 (a white frame);
:meth:`MixFormerV2GOT10k.track` therefore opens the files itself and leaves the conversion to
:func:`frame_from_image`.

``got10k`` is imported only when :class:`MixFormerV2GOT10k` is first used (the class derives
from ``got10k.trackers.Tracker``, so it is built then); without it the import raises
:class:`~mixformerv2.errors.MixFormerError` saying what to install.
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np

from ...errors import InputError, MixFormerError
from ...geometry import normalize_frame

__all__ = ["MixFormerV2GOT10k", "frame_from_image"]

DEFAULT_NAME = "MixFormerV2"

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def frame_from_image(image: Any) -> np.ndarray:
    """A ``PIL.Image`` (any mode PIL can turn into RGB) or a numpy frame -> contiguous RGB uint8.

    Numpy arrays go through :func:`~mixformerv2.geometry.normalize_frame` (gray, RGBA, uint16).
    PIL modes: ``RGB`` as is; ``L`` / ``LA`` / ``La`` / ``1`` gray replicated; ``RGBA`` / ``RGBX``
    alpha or padding dropped; ``I;16*`` and ``I`` (values within 0..65535) scaled from 16 bit;
    ``P``, ``PA``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``RGBa`` via ``image.convert('RGB')``.
    Float images (``F``) are refused: their value range is ambiguous.
    """
    if isinstance(image, np.ndarray):
        return normalize_frame(image)
    mode = getattr(image, "mode", None)
    if mode is None or not hasattr(image, "convert"):
        raise InputError(f"frame must be a PIL image or a numpy array, got {type(image).__name__}")
    image.load()  # decode lazily opened files now (a broken file fails here, with PIL's message)
    if mode in ("RGB", "L", "RGBA", "RGBX"):
        return normalize_frame(np.asarray(image))
    if mode in ("LA", "La", "1"):
        return normalize_frame(np.asarray(image.convert("L")))
    if mode in _SIXTEEN_BIT_MODES:
        return normalize_frame(np.asarray(image).astype(np.uint16))  # native byte order
    if mode == "I":
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise InputError(
                f"32-bit integer image (PIL mode 'I') with values {values.min()}..{values.max()}: "
                "only 8- and 16-bit images are supported"
            )
        return normalize_frame(values.astype(np.uint16))
    if mode in ("F", "I;16S", "I;32", "I;32S"):
        raise InputError(f"PIL image mode {mode!r} is not supported (its value range is ambiguous)")
    try:
        return normalize_frame(np.asarray(image.convert("RGB")))
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot convert a PIL image of mode {mode!r} to RGB: {exc}") from None


_CLASS: type | None = None


def _got10k_tracker_base() -> type:
    try:
        from got10k.trackers import Tracker
    except ImportError as exc:
        raise MixFormerError(
            "the GOT-10k toolkit is not installed: `pip install got10k` to use MixFormerV2GOT10k "
            f"({type(exc).__name__}: {exc})"
        ) from None
    return Tracker


def _build_class() -> type:
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    base = _got10k_tracker_base()

    class MixFormerV2GOT10k(base):  # type: ignore[misc, valid-type]
        """MixFormerV2 as a ``got10k.trackers.Tracker``: ``init(image, box)``, ``update(image)``.

        ``weights``: a checkpoint (official ``.pth.tar`` or our safetensors); None = the model
        shipped with the package (:func:`mixformerv2.demo.default_weights`). ``preset`` /
        ``device`` / ``config`` as :meth:`mixformerv2.Tracker.from_checkpoint`; ``dataset``
        picks the benchmark settings the official scripts use (e.g. ``'lasot'``,
        ``'got10k_test'``); ``name`` is the results folder name got10k uses. Alternatively
        pass a ready ``tracker`` (a :class:`mixformerv2.Tracker`) instead of the loading
        arguments.
        """

        def __init__(
            self,
            weights: str | os.PathLike | None = None,
            preset: str | None = None,
            device: str = "cpu",
            dataset: str | None = None,
            name: str | None = None,
            config: Any = None,
            tracker: Any = None,
        ) -> None:
            super().__init__(name=name or DEFAULT_NAME, is_deterministic=True)
            if tracker is None:
                from ...tracking.tracker import Tracker

                if weights is None:
                    from ...demo import default_weights

                    weights = default_weights()
                tracker = Tracker.from_checkpoint(weights, preset=preset, device=device, config=config, dataset=dataset)
            elif any(v is not None for v in (weights, preset, dataset, config)):
                raise MixFormerError("pass either a ready `tracker` or the arguments to load one, not both")
            self.tracker = tracker
            self.last_score = float("nan")

        def init(self, image: Any, box: Sequence[float]) -> None:
            """got10k passes the first frame (a PIL image) and the (x, y, w, h) box."""
            self.tracker.init(frame_from_image(image), [float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1)])
            self.last_score = float("nan")

        def update(self, image: Any) -> np.ndarray:
            """The (x, y, w, h) box in this frame, a float64 numpy array as got10k stores it."""
            result = self.tracker.track(frame_from_image(image))
            self.last_score = result.score
            return np.asarray(result.box, dtype=np.float64)

        def track(self, img_files: Sequence[str], box: Sequence[float], visualize: bool = False):
            """got10k's ``Tracker.track`` (boxes (N, 4) with ``boxes[0] = box``, seconds per frame),
            except that frames reach :meth:`init` / :meth:`update` in their original PIL mode:
            got10k's ``image.convert('RGB')`` would clip 16-bit frames at 255."""
            from PIL import Image

            frame_num = len(img_files)
            boxes = np.zeros((frame_num, 4))
            boxes[0] = box
            times = np.zeros(frame_num)
            for f, img_file in enumerate(img_files):
                with Image.open(img_file) as image:
                    image.load()
                    start = time.time()
                    if f == 0:
                        self.init(image, box)
                    else:
                        boxes[f, :] = self.update(image)
                    times[f] = time.time() - start
                    if visualize:
                        from got10k.utils.viz import show_frame

                        show_frame(Image.fromarray(frame_from_image(image)), boxes[f, :])
            return boxes, times

    MixFormerV2GOT10k.__module__ = __name__
    MixFormerV2GOT10k.__qualname__ = "MixFormerV2GOT10k"
    _CLASS = MixFormerV2GOT10k
    return _CLASS


def __getattr__(name: str) -> Any:
    # `MixFormerV2GOT10k` derives from got10k's Tracker, so it is built on first access
    # (`from ...got10k_adapter import MixFormerV2GOT10k` included).
    if name == "MixFormerV2GOT10k":
        return _build_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
