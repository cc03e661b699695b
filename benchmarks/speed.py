"""Frames per second per preset and runtime, side by side in one run.

For each preset (S, B), each runtime (torch fp32 / bf16, onnxruntime fp32 / int8) and each number of
targets (1, 4, 8): frames per second end to end (crop -> box, ``Tracker.track_targets``) and of the
network step alone; the ratio to the official-style per-frame full forward (fp32, templates
re-encoded every frame, one target) measured in the same run; and the fraction of this machine's
GEMM peak that the transformer blocks reach, timed alone (``step_blocks``, as the runtime runs them:
``peak_fraction``) and over the whole step including patch embedding and heads (``peak_fraction_step``,
a lower bound). The peaks are timed beside each row; the blocks' linear layers run in the runtime's
matrix type (float32, bfloat16 or int8) and attention in float32 in every runtime, so the fraction is
the time the blocks would take with each part at its own type's peak over the time they take;
``peak_fraction_one_type`` holds all of their FLOPs, attention's too, to the runtime type's peak.
Timing windows of the runtimes are interleaved round by round, so that a machine that gets busier
affects all alike. Random weights (speed does not depend on their values).

    python benchmarks/speed.py [--threads 2] [--presets mixformerv2-s mixformerv2-b]
                               [--runtimes fp32 bf16 int8 onnx] [--targets 1 4 8] [--seconds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

import numpy as np
import torch

from mixformerv2 import build_model, get_preset
from mixformerv2.deploy.onnx import OnnxRuntime, export_module, quantize_int8
from mixformerv2.runtimes import FAST_RUNTIMES, RUNTIMES, TorchRuntime, make_runtime
from mixformerv2.tracking.tracker import Tracker


def measure(
    fns: dict[str, Callable[[], object]], seconds: float, sync: Callable[[], None] = lambda: None,
    warmup: int = 3, rounds: int = 5, statistic: Callable[[list[float]], float] = statistics.median,
) -> dict[str, float]:
    """Calls per second of each function (median over rounds, or ``statistic``), the timing windows
    interleaved round by round."""
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
    return {name: statistic(r) for name, r in rates.items()}


def peak_kind(runtime: str) -> str:
    """The matrix type whose GEMM peak a runtime's blocks are measured against."""
    return runtime if runtime in FAST_RUNTIMES else "fp32"


GEMM_N = 1536  # the square matrix product whose rate is the machine's GEMM peak


def gemm_fn(kind: str) -> Callable[[], object]:
    """One GEMM_N^3 matrix product of the runtime's matrix type, as that runtime computes it."""
    n = GEMM_N
    a, b = torch.randn(n, n), torch.randn(n, n)
    if kind == "bf16":
        a, b = a.bfloat16(), b.bfloat16()
        return lambda: a @ b
    if kind == "int8":  # what the int8 runtime runs: onnxruntime's dynamically quantised MatMul
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
            [numpy_helper.from_array(b.numpy(), "b")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(quantize_int8(model.SerializeToString()), options,
                                       providers=["CPUExecutionProvider"])
        feed = {"a": a.numpy()}
        return lambda: session.run(None, feed)
    return lambda: a @ b


def gemm_gflops(calls_per_second: float) -> float:
    return calls_per_second * 2 * GEMM_N**3 / 1e9


def block_gflops_step(cfg) -> tuple[float, float]:
    """GFLOPs of the transformer blocks in one cached step (``MixFormerV2.step_blocks``, one target):
    (the linear layers' weight GEMMs, attention's query-key and weight-value products)."""
    from torch.utils.flop_counter import FlopCounterMode

    from mixformerv2.models.mixformerv2 import MixFormerV2

    with torch.device("meta"):
        model = MixFormerV2(cfg).eval()
        s = torch.empty(1, 3, cfg.search_size, cfg.search_size)
        t = torch.empty(1, 3, cfg.template_size, cfg.template_size)
        x, cache = model.backbone.embed_search(s), model.encode_templates(t, t)
        with FlopCounterMode(display=False) as counter:
            model.step_blocks(x, cache)
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    linear = sum(n for op, n in counts.items() if op in ("aten.addmm", "aten.mm"))
    return linear / 1e9, (sum(counts.values()) - linear) / 1e9


def ideal_seconds(runtime: str, linear_gflops: float, attention_gflops: float, peaks: dict[str, float]) -> float:
    """Time the blocks would take at the GEMM peaks of the types that run them: the linear layers at
    the runtime's matrix type, attention at float32 (every runtime keeps attention in float32)."""
    return linear_gflops / peaks[peak_kind(runtime)] + attention_gflops / peaks["fp32"]


def blocks_fn(model, runtime, search: np.ndarray, template: np.ndarray) -> Callable[[], object]:
    """Only the transformer blocks of one step (``MixFormerV2.step_blocks``), run as ``runtime`` runs
    them: the runtime's torch model, or for onnx / int8 the blocks as an ONNX graph of that precision
    in a session with the runtime's settings. Their time is what the GEMM-peak fraction is taken of."""
    from mixformerv2.models.mixformerv2 import TemplateCache

    net = runtime.model if isinstance(runtime, TorchRuntime) else model  # bf16: the runtime's bf16 copy
    with torch.inference_mode():
        x = net.backbone.embed_search(torch.from_numpy(search))
        cache = net.encode_templates(torch.from_numpy(template), torch.from_numpy(template))
    if isinstance(runtime, TorchRuntime):
        def run():
            with torch.inference_mode():
                return net.step_blocks(x, cache)
        return run

    class Blocks(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x, keys, values):
            return self.net.step_blocks(x, TemplateCache(keys, values))

    with torch.no_grad():
        graph = export_module(Blocks(model), (x, cache.keys, cache.values), ["x", "keys", "values"], ["tokens"])
    if runtime.precision == "int8":
        graph = quantize_int8(graph)
    session = OnnxRuntime.session(graph, runtime.threads)
    feed = {"x": x.numpy(), "keys": cache.keys.numpy(), "values": cache.values.numpy()}
    return lambda: session.run(None, feed)


def bench_preset(name: str, runtimes: list[str], targets: list[int], seconds: float) -> list[dict]:
    cfg = get_preset(name).model
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(0)
    t = torch.randn(1, 3, cfg.template_size, cfg.template_size, generator=g)
    s = torch.randn(1, 3, cfg.search_size, cfg.search_size, generator=g)
    with torch.inference_mode():
        official = measure({"official": lambda: model(t, t, s, softmax=True, run_score_head=True)}, seconds)["official"]
    linear, attention = block_gflops_step(cfg)
    frame = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    gemms = {kind: gemm_fn(kind) for kind in sorted({"fp32", *map(peak_kind, runtimes)})}
    rows = []
    for n in targets:
        boxes = [(100 + 110 * k, 200 + 20 * (k % 3), 60, 50) for k in range(n)]
        trackers, steps, blocks_only = {}, {}, {}
        for rt_name in runtimes:
            rt = make_runtime(model, rt_name)
            if rt_name == "onnx":
                rt.encode(np.zeros((n, 3, cfg.template_size, cfg.template_size), np.float32),
                          np.zeros((n, 3, cfg.template_size, cfg.template_size), np.float32))  # export for n targets
            tracker = Tracker(rt)
            tracker.init_targets(frame, boxes)
            search = np.random.default_rng(1).standard_normal((n, 3, cfg.search_size, cfg.search_size), np.float32)
            cache = rt.encode(*(np.random.default_rng(2).standard_normal(
                (2, n, 3, cfg.template_size, cfg.template_size), np.float32)))
            trackers[rt_name] = lambda tr=tracker: tr.track_targets(frame)
            steps[rt_name] = lambda rt=rt, search=search, cache=cache: rt.step(search, cache)
            blocks_only[rt_name] = blocks_fn(model, rt, search, np.random.default_rng(2).standard_normal(
                (n, 3, cfg.template_size, cfg.template_size), np.float32))
        end_to_end = measure(trackers, seconds)
        # steps, blocks alone and the GEMM peaks in one interleaved measurement: the fractions are
        # ratios of rates taken side by side, so a shared VM's changing load cancels out
        rates = measure({**{f"step {k}": f for k, f in steps.items()},
                         **{f"blocks {k}": f for k, f in blocks_only.items()},
                         **{f"gemm {k}": f for k, f in gemms.items()}}, 2 * seconds)
        step = {k: rates[f"step {k}"] for k in steps}
        in_blocks = {k: rates[f"blocks {k}"] for k in blocks_only}
        peaks = {kind: gemm_gflops(rates[f"gemm {kind}"]) for kind in gemms}
        for rt_name in runtimes:
            ideal = n * ideal_seconds(rt_name, linear, attention, peaks)
            rows.append({
                "preset": name, "runtime": rt_name, "targets": n,
                "fps_end_to_end": end_to_end[rt_name], "fps_step": step[rt_name],
                "ratio_vs_official_style": end_to_end[rt_name] / official,
                "peak_fraction": ideal * in_blocks[rt_name],
                "peak_fraction_step": ideal * step[rt_name],
                # all block FLOPs, attention's too, against the runtime type's peak (a stricter bound)
                "peak_fraction_one_type": (linear + attention) * n * in_blocks[rt_name] / peaks[peak_kind(rt_name)],
                "official_style_fps": official,
                "gemm_peak_gflops": peaks[peak_kind(rt_name)],
                "gemm_peak_fp32_gflops": peaks["fp32"],
            })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--presets", nargs="+", default=["mixformerv2-s", "mixformerv2-b"])
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    parser.add_argument("--targets", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per path")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON objects, one per line")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.json:
        print(f"torch {torch.__version__}, CPU, {args.threads} threads, random weights; GEMM peak: a {GEMM_N}^3 "
              "product of the runtime's matrix type and of float32, timed interleaved with the steps of each row")
        print()
        print("| preset | runtime | targets | FPS end to end | FPS step | x official-style (fp32 full forward) "
              "| GEMM peak reached: blocks alone | over the whole step | blocks alone, all at the type's peak "
              "| GEMM peak (GFLOP/s): type / fp32 |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.presets:
        for row in bench_preset(name, args.runtimes, args.targets, args.seconds):
            if args.json:
                keys = ("preset", "runtime", "targets", "fps_end_to_end", "fps_step", "ratio_vs_official_style",
                        "peak_fraction", "peak_fraction_step", "peak_fraction_one_type", "gemm_peak_gflops",
                        "gemm_peak_fp32_gflops")
                print(json.dumps({k: (round(row[k], 4) if isinstance(row[k], float) else row[k]) for k in keys}),
                      flush=True)
            else:
                print(f"| {row['preset']} | {row['runtime']} | {row['targets']} | {row['fps_end_to_end']:.1f} "
                      f"| {row['fps_step']:.1f} | {row['ratio_vs_official_style']:.2f}x "
                      f"(official {row['official_style_fps']:.1f}) | {100 * row['peak_fraction']:.0f}% "
                      f"| {100 * row['peak_fraction_step']:.0f}% | {100 * row['peak_fraction_one_type']:.0f}% "
                      f"| {row['gemm_peak_gflops']:.0f} / {row['gemm_peak_fp32_gflops']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
