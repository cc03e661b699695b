"""Third-party benchmark toolkits running this tracker.

* :class:`MixFormerV2GOT10k` (:mod:`.got10k_adapter`): a ``got10k.trackers.Tracker``, so the
  GOT-10k toolkit's experiments (``ExperimentOTB``, ``ExperimentGOT10k``, ``ExperimentLaSOT``,
  ...) run our tracker. Needs ``pip install got10k``.
* :mod:`.vot`: the VOT toolkit (``vot-toolkit`` 0.9) integration. A TraX server
  (``python -m mixformerv2.evaluation.integrations.vot --weights ...``, needs ``vot-trax``),
  :class:`VOTPythonTracker` for the toolkit's ``python`` protocol, and
  :func:`write_trackers_ini`, which registers the tracker in a workspace's ``trackers.ini``.

Nothing here imports ``got10k``, ``trax`` or ``vot`` until it is used: the names below are
resolved lazily, and a missing toolkit raises :class:`~mixformerv2.errors.MixFormerError`
saying what to install.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "MixFormerV2GOT10k": ".got10k_adapter",
    "frame_from_image": ".got10k_adapter",
    "VOTPythonTracker": ".vot",
    "run_trax_server": ".vot",
    "trackers_ini_entry": ".vot",
    "write_trackers_ini": ".vot",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
