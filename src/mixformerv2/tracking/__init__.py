"""Tracking: the MixFormerV2 tracker, frame sources and output writers."""

from .tracker import TrackResult, Tracker
from .video import open_source

__all__ = ["TrackResult", "Tracker", "open_source"]
