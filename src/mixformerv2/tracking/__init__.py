"""Tracking: the MixFormerV2 tracker, frame sources and output writers."""
