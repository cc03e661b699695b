"""Frames per second: official-style per-frame full forward vs our cached step.

Both paths run side by side in one process with the same threads and random weights
(speed does not depend on the weight values). Usage:

    python benchmarks/speed.py [--threads 2] [--presets mixformerv2-s mixformerv2-b] [--seconds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import torch

from mixformerv2 import build_model, get_preset
from mixformerv2.tracking.tracker import Tracker


def measure(
    fns: dict[str, Callable[[], object]], seconds: float, sync: Callable[[], None], warmup: int = 3, rounds: int = 5
) -> dict[str, float]:
    """Median FPS per function. Timing windows of the functions are interleaved round by
    round, so that a machine that gets busier or throttles affects all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    rates: dict[str, list[float]] = {name: [] for name in fns}
    window = seconds / rounds
    for _ in range(rounds):
        for name, fn in fns.items():
            n, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < window or n < 2:
                fn()
                n += 1
                sync()
            rates[name].append(n / elapsed)
    return {name: statistics.median(r) for name, r in rates.items()}


def bench_preset(name: str, seconds: float, device: torch.device) -> dict:
    cfg = get_preset(name).model
    model = build_model(cfg).eval().to(device)
    g = torch.Generator().manual_seed(0)
    t, ot = (torch.randn(1, 3, cfg.template_size, cfg.template_size, generator=g).to(device) for _ in range(2))
    s = torch.randn(1, 3, cfg.search_size, cfg.search_size, generator=g).to(device)
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    tracker = Tracker(model, device=device)
    tracker.init(frame, (300, 200, 60, 50))
    with torch.inference_mode():
        cache = model.encode_templates(t, ot)
        rates = measure(
            {
                "official": lambda: model(t, ot, s, softmax=True, run_score_head=True),
                "cached": lambda: model.step(s, cache),
                "tracker": lambda: tracker.track(frame),
            },
            seconds,
            torch.cuda.synchronize if device.type == "cuda" else (lambda: None),
        )
    return {"preset": name, **rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--presets", nargs="+", default=["mixformerv2-s", "mixformerv2-b"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seconds", type=float, default=5.0, help="timing budget per path and preset")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"torch {torch.__version__}, {where}, float32, batch 1, random weights")
    print()
    print("| preset | official-style full forward (FPS) | cached step (FPS) | ratio | tracker end to end (FPS) |")
    print("|---|---:|---:|---:|---:|")
    for name in args.presets:
        r = bench_preset(name, args.seconds, device)
        print(
            f"| {r['preset']} | {r['official']:.1f} | {r['cached']:.1f} | {r['cached'] / r['official']:.2f}x "
            f"| {r['tracker']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
