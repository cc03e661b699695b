"""How closely the fast runtimes follow the exact fp32 path, beside the fp32 tracker's own noise floor.

For each runtime, on held-out synthetic sequences (the seeds of `synthetic_benchmark.py`):
- forced IoU: mean IoU of its boxes to fp32's when both are given the same crops every frame;
- the success AUC of the two trackers running freely, and the difference.
A small model's trajectories amplify tiny differences: moving the first box by a fraction of a pixel
moves fp32's own AUC by about as much as a fast runtime does. So every free run is repeated from
several such starts (`--starts`, pixels): fp32's spread over them is the noise floor, and the AUCs
compared are the means over the starts (the first start alone is one draw).

A runtime meets the accuracy bar with forced IoU >= 0.98 and the mean AUC within 0.5 point of fp32's.
`--record` writes the runtimes that meet it into the weights' metadata (a mixformerv2 safetensors
file; tensors unchanged), where the default runtime, `auto`, looks for them.

    python benchmarks/runtime_fidelity.py [--sequences 96] [--weights CKPT] [--runtimes onnx bf16 int8] [--record]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tqdm import tqdm

from mixformerv2 import load_checkpoint
from mixformerv2.demo import default_weights
from mixformerv2.evaluation.bench import (AUC_BAR, FIDELITY_SEQUENCES, FIDELITY_STARTS, FORCED_IOU_BAR, HELD_OUT_SEED,
                                          free_running_auc, held_out_sequences, runtime_fidelity)
from mixformerv2.models.checkpoints import record_runtimes_meeting_bar, runtimes_meeting_bar
from mixformerv2.tracking.tracker import Tracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=FIDELITY_SEQUENCES)
    parser.add_argument("--weights", help="checkpoint (default: the shipped default model)")
    parser.add_argument("--runtimes", nargs="+", default=["onnx", "bf16", "int8"])
    parser.add_argument("--starts", nargs="+", type=float, default=list(FIDELITY_STARTS),
                        help="first box moved right by these many pixels, one free run each")
    parser.add_argument("--record", action="store_true",
                        help="write the runtimes that meet the bar into the weights file's metadata")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sequences = held_out_sequences(args.sequences, progress=True)
    frames = sum(len(s[0]) for s in sequences)
    weights = args.weights or default_weights()
    model = load_checkpoint(weights).eval()

    start = time.perf_counter()
    exact = Tracker(model, runtime="fp32")
    exact_aucs = [free_running_auc(exact, sequences, s) for s in tqdm(args.starts, desc="fp32 starts")]
    rows = [runtime_fidelity(model, name, sequences, starts=args.starts, exact_aucs=exact_aucs)
            for name in tqdm(args.runtimes, desc="runtimes")]

    print(f"\n{args.sequences} held-out synthetic sequences ({frames} frames, seeds ({HELD_OUT_SEED}, i)); "
          f"weights {weights}; {args.threads} threads; {time.perf_counter() - start:.0f} s")
    print("fp32 success AUC with the first box moved by "
          + ", ".join(f"{s:+g} px: {a:.2f}" for s, a in zip(args.starts, exact_aucs))
          + f" (mean {np.mean(exact_aucs):.2f}, spread {np.ptp(exact_aucs):.2f})")
    first = f"{args.starts[0]:+g} px"
    print(f"\n| runtime | forced IoU (mean / min) | AUC from {first} | fp32 | difference | "
          f"AUC, mean of {len(args.starts)} starts | fp32 | difference | meets the bar |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for f in rows:
        print(f"| {f.runtime} | {f.forced_iou:.3f} / {f.min_forced_iou:.3f} | {f.fast_aucs[0]:.2f} | "
              f"{f.exact_aucs[0]:.2f} | {f.fast_aucs[0] - f.exact_aucs[0]:+.2f} | {f.auc_fast:.2f} | "
              f"{f.auc_exact:.2f} | {f.auc_delta:+.2f} | {'yes' if f.meets_bar else 'no'} |")
    print(f"(the bar: forced IoU >= {FORCED_IOU_BAR}, mean-of-starts AUC within {AUC_BAR} point of fp32)")
    if args.record:
        measured = {f.runtime for f in rows}  # runtimes not measured in this run keep their record
        meeting = [r for r in runtimes_meeting_bar(weights) if r not in measured]
        meeting += [f.runtime for f in rows if f.meets_bar]
        record_runtimes_meeting_bar(weights, meeting)
        print(f"recorded in {weights}: runtimes meeting the bar = {', '.join(meeting) or 'none'}")


if __name__ == "__main__":
    from mixformerv2.errors import MixFormerError

    try:
        main()
    except MixFormerError as exc:
        raise SystemExit(f"error: {exc}")
