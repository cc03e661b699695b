"""`mixformerv2 demo`: track an embedded clip with the default model, beside OpenCV CSRT and KCF.

The clip is generated on the fly (deterministic synthetic footage with ground truth), so the
demo needs no download and can score every tracker against the truth.
"""

from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError

WEIGHTS_DIR = Path(__file__).with_name("weights")
DEFAULT_WEIGHTS = WEIGHTS_DIR / "mixformerv2-tiny.safetensors"
DEMO_SEED = 7
# The tracker policy the default model's card measures (not official): written into its file by
# `make default-model` (models.checkpoints.record_tracker_defaults), read back when it loads.
DEFAULT_MODEL_POLICY = {"hold_below": 0.2, "max_scale_change": 1.02}


def default_weights() -> Path:
    """The model trained and shipped by this project (see weights/MODEL_CARD.md)."""
    if not DEFAULT_WEIGHTS.is_file():
        raise CheckpointError(f"the default model is missing from the installation ({DEFAULT_WEIGHTS}); pass --weights")
    return DEFAULT_WEIGHTS


def model_label(weights: str | Path | None) -> str:
    """How the demo's table names the tracked model: the default one, or the file given."""
    return "MixFormerV2 (default model)" if not weights else f"MixFormerV2 ({Path(weights).name})"


def run_demo(out_dir: str | Path = "out/demo", weights: str | Path | None = None, seed: int = DEMO_SEED,
             baselines: tuple[str, ...] = ("csrt", "kcf"), device: str = "cpu", overwrite: bool = True,
             runtime: str | None = None) -> str:
    """Write the clip, the annotated result video and the boxes; return the comparison table."""
    from .data.synthetic import write_clip
    from .evaluation.compare import OpenCVTracker, compare_trackers, format_table
    from .tracking.tracker import Tracker
    from .tracking.video import AnnotatedVideoWriter, draw_box, open_source, write_boxes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clip = out / "clip.mp4"
    gt, absent = write_clip(clip, seed)
    with open_source(clip) as source:
        frames = list(source)
        fps = source.fps
    if len(frames) != len(gt):
        raise RuntimeError(f"{clip}: decoded {len(frames)} frames for {len(gt)} boxes")
    label = model_label(weights)
    weights = Path(weights) if weights else default_weights()
    tracker = Tracker.from_checkpoint(weights, device=device, runtime=runtime)
    contenders = {label: lambda: tracker}
    contenders.update({f"OpenCV {name.upper()}": (lambda n=name: OpenCVTracker(n)) for name in baselines})
    scored = compare_trackers(contenders, [(frames, gt, ~absent)], progress=True)

    ours = scored[0].runs[0].boxes
    write_boxes(out / "boxes.txt", ours, overwrite=overwrite)
    write_boxes(out / "groundtruth.txt", gt, overwrite=overwrite)
    size = (frames[0].shape[1], frames[0].shape[0])
    with AnnotatedVideoWriter(out / "tracked.mp4", fps, size, overwrite=overwrite) as writer:
        for i, frame in enumerate(frames):
            shown = frame if absent[i] else draw_box(frame, gt[i], color=(255, 255, 255))
            writer.write(shown, ours[i], label="MixFormerV2")
    table = format_table(scored)
    return (
        f"clip: {clip} ({len(frames)} frames, synthetic seed {seed}, {int(absent.sum())} frames with the target hidden)\n"
        f"weights: {weights} (runtime {tracker.runtime.name})\n\n{table}\n\n"
        f"annotated video: {out / 'tracked.mp4'} (green: MixFormerV2, white: ground truth)\n"
        f"boxes: {out / 'boxes.txt'}"
    )
