"""Real footage: the default model (or any checkpoint) vs OpenCV CSRT and KCF on a real clip.

The clip is OpenCV's sample ``box.mp4`` (``../shared/data/videos/``: a hand moves a printed box
over a table); its ground truth is hand-annotated on every 38th frame
(``benchmarks/annotations/box_mp4.txt``, about +-5 px per edge). Every tracker runs on every
frame, and is scored on the annotated frames (pytracking success AUC / precision, OTB rules).

    python benchmarks/real_clip.py [--weights CKPT] [--runtime fp32] [--video PATH] [--save-video out.mp4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mixformerv2.cli import HOLD_BELOW_HELP, MAX_SCALE_CHANGE_HELP
from mixformerv2.demo import default_weights
from mixformerv2.evaluation.compare import OpenCVTracker, run_tracker
from mixformerv2.evaluation.metrics import aggregate, sequence_metrics
from mixformerv2.tracking.tracker import Tracker
from mixformerv2.tracking.video import AnnotatedVideoWriter, draw_box, open_source

HERE = Path(__file__).resolve().parent
ANNOTATIONS = HERE / "annotations" / "box_mp4.txt"
VIDEO = HERE.parent.parent / "shared" / "data" / "videos" / "box.mp4"


def read_annotations(path: Path) -> tuple[list[int], np.ndarray]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [int(r[0]) for r in rows], np.array([[float(v) for v in r[1:]] for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="checkpoint or ONNX export (default: the shipped default model)")
    parser.add_argument("--runtime", default=None, help="runtime of the MixFormerV2 tracker (default: auto)")
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--baselines", nargs="*", default=["csrt", "kcf"])
    parser.add_argument("--save-video", type=Path, help="write the clip with every tracker's box drawn")
    parser.add_argument("--hold-below", type=float, help=HOLD_BELOW_HELP)
    parser.add_argument("--max-scale-change", type=float, help=MAX_SCALE_CHANGE_HELP)
    args = parser.parse_args()

    frame_ids, gt = read_annotations(ANNOTATIONS)
    source = open_source(args.video)
    frames = list(source)
    source.close()
    if frame_ids[-1] >= len(frames):
        raise SystemExit(f"error: {args.video} has {len(frames)} frames; annotations go to frame {frame_ids[-1]}")
    weights = args.weights or default_weights()
    def ours() -> Tracker:
        tracker = Tracker.from_checkpoint(weights, runtime=args.runtime)
        tracker.config = tracker.config.overridden(hold_below=args.hold_below,
                                                   max_scale_change=args.max_scale_change)
        return tracker

    contenders = {"MixFormerV2": ours}
    contenders.update({f"OpenCV {b.upper()}": (lambda n=b: OpenCVTracker(n)) for b in args.baselines})
    runs = {name: run_tracker(make(), frames, gt[0]) for name, make in contenders.items()}

    print(f"{args.video.name}: {len(frames)} frames, {len(frame_ids) - 1} hand-annotated after the first; "
          f"weights {weights}\n")
    print("| tracker | success AUC | precision@20 | mean IoU | FPS |\n|---|---:|---:|---:|---:|")
    for name, run in runs.items():
        result = sequence_metrics(run.boxes[frame_ids], gt, mode="otb")
        summary = aggregate([result])
        print(f"| {name} | {summary['AUC']:.1f} | {summary['Precision']:.1f} | {np.mean(result.iou[1:]):.3f} "
              f"| {run.fps:.1f} |")
    if args.save_video:
        colors = [(255, 0, 0), (0, 255, 0), (0, 128, 255), (255, 255, 0)]
        size = (frames[0].shape[1], frames[0].shape[0])
        with AnnotatedVideoWriter(args.save_video, source.fps, size) as writer:
            for i, frame in enumerate(frames):
                for k, (name, run) in enumerate(runs.items()):
                    frame = draw_box(frame, run.boxes[i], color=colors[k % len(colors)], label=name)
                writer.write(frame)
        print(f"\nwrote {args.save_video}")


if __name__ == "__main__":
    from mixformerv2.errors import MixFormerError

    try:
        main()
    except MixFormerError as exc:
        raise SystemExit(f"error: {exc}")
