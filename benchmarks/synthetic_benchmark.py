"""Held-out synthetic benchmark: the default model (or any checkpoint) vs OpenCV CSRT and KCF.

Sequences are generated with seeds the default model never saw in training (training uses
(0, i); this benchmark uses (HELD_OUT_SEED, i)), at the generator's default settings. All
trackers run side by side in one process on the same decoded frames. A second table splits the
AUC by scenario (look-alike distractors, camera motion, target size, speed, ...).

    python benchmarks/synthetic_benchmark.py [--sequences 24] [--weights CKPT] [--baselines csrt kcf]
"""

from __future__ import annotations

import argparse

import torch

from mixformerv2.cli import HOLD_BELOW_HELP, MAX_SCALE_CHANGE_HELP
from mixformerv2.demo import default_weights
from mixformerv2.evaluation.bench import HELD_OUT_SEED, held_out_sequences, scenario_groups
from mixformerv2.evaluation.compare import OpenCVTracker, compare_trackers, format_breakdown, format_table
from mixformerv2.tracking.tracker import Tracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=24)
    parser.add_argument("--weights", help="checkpoint (default: the shipped default model)")
    parser.add_argument("--baselines", nargs="*", default=["csrt", "kcf"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--hold-below", type=float, help=HOLD_BELOW_HELP)
    parser.add_argument("--max-scale-change", type=float, help=MAX_SCALE_CHANGE_HELP)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sequences = held_out_sequences(args.sequences, with_info=True)
    infos = [s[3] for s in sequences]
    sequences = [s[:3] for s in sequences]
    frames = sum(len(s[0]) for s in sequences)
    weights = args.weights or default_weights()
    tracker = Tracker.from_checkpoint(weights, device=args.device)
    tracker.config = tracker.config.overridden(hold_below=args.hold_below,
                                               max_scale_change=args.max_scale_change)
    contenders = {"MixFormerV2": lambda: tracker}
    contenders.update({f"OpenCV {b.upper()}": (lambda n=b: OpenCVTracker(n)) for b in args.baselines})
    scored = compare_trackers(contenders, sequences, progress=True)
    print(f"\n{args.sequences} held-out synthetic sequences ({frames} frames, seeds ({HELD_OUT_SEED}, i)); "
          f"weights {weights}; {args.threads} threads")
    print("success AUC / precision / normalised precision: pytracking analysis, LaSOT rules for hidden frames\n")
    print(format_table(scored))
    print("\nsuccess AUC by scenario (the generator's draw for each sequence; speed in first-box sizes per frame)\n")
    print(format_breakdown(scored, scenario_groups(infos)))


if __name__ == "__main__":
    from mixformerv2.errors import MixFormerError

    try:
        main()
    except MixFormerError as exc:
        raise SystemExit(f"error: {exc}")
