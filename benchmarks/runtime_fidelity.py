"""How closely the fast runtimes follow the exact fp32 path, beside the fp32 tracker's own noise floor.

For each runtime, on held-out synthetic sequences (the seeds of `synthetic_benchmark.py`):
- forced IoU: mean IoU of its boxes to fp32's when both are given the same crops every frame;
- the success AUC of the two trackers running freely, and the difference.
A small model's trajectories amplify tiny differences, so the script also runs fp32 alone with the
first box moved by a fraction of a pixel: the spread of those AUCs is the noise floor a runtime's
AUC difference should be read against (more sequences lower it).

    python benchmarks/runtime_fidelity.py [--sequences 96] [--weights CKPT] [--runtimes onnx bf16 int8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mixformerv2 import load_checkpoint
from mixformerv2.data.synthetic import generate_sequence
from mixformerv2.demo import default_weights
from mixformerv2.evaluation.bench import free_running_auc, runtime_fidelity
from mixformerv2.tracking.tracker import Tracker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_benchmark import BENCH_SEED  # noqa: E402  the same held-out sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=96)
    parser.add_argument("--weights", help="checkpoint (default: the shipped default model)")
    parser.add_argument("--runtimes", nargs="+", default=["onnx", "bf16", "int8"])
    parser.add_argument("--shifts", nargs="*", type=float, default=[0.1, -0.1, 0.2],
                        help="first-box shifts in pixels for the fp32 noise floor")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sequences = []
    for i in tqdm(range(args.sequences), desc="sequences"):
        seq = generate_sequence((BENCH_SEED, i))
        sequences.append((list(seq.frames), seq.boxes, ~seq.absent))
    frames = sum(len(s[0]) for s in sequences)
    weights = args.weights or default_weights()
    model = load_checkpoint(weights).eval()

    start = time.perf_counter()
    exact = Tracker(model, runtime="fp32")
    reference = free_running_auc(exact, sequences)
    floor = [free_running_auc(exact, sequences, shift) - reference for shift in tqdm(args.shifts, desc="noise floor")]
    rows = [runtime_fidelity(model, name, sequences, auc_exact=reference)
            for name in tqdm(args.runtimes, desc="runtimes")]

    print(f"\n{args.sequences} held-out synthetic sequences ({frames} frames, seeds ({BENCH_SEED}, i)); "
          f"weights {weights}; {args.threads} threads; {time.perf_counter() - start:.0f} s")
    print(f"fp32 success AUC {reference:.2f}; with the first box moved by "
          + ", ".join(f"{s:+g} px: {d:+.2f}" for s, d in zip(args.shifts, floor))
          + (f" (noise floor: mean {np.mean(floor):+.2f}, largest {max(floor, key=abs):+.2f})" if floor else ""))
    print("\n| runtime | forced IoU (mean / min) | AUC | fp32 AUC | difference |")
    print("|---|---|---:|---:|---:|")
    for f in rows:
        print(f"| {f.runtime} | {f.forced_iou:.3f} / {f.min_forced_iou:.3f} | {f.auc_fast:.2f} | {f.auc_exact:.2f} | "
              f"{f.auc_delta:+.2f} |")


if __name__ == "__main__":
    from mixformerv2.errors import MixFormerError

    try:
        main()
    except MixFormerError as exc:
        raise SystemExit(f"error: {exc}")
