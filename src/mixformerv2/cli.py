"""Command line: ``mixformerv2 track | info | train | eval | report | pack``."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from .errors import InputError, MixFormerError


def _parse_box(text: str) -> list[float]:
    parts = text.replace(" ", "").split(",")
    try:
        box = [float(p) for p in parts]
    except ValueError:
        raise InputError(f"--box must be four numbers x,y,w,h (got {text!r})") from None
    if len(box) != 4:
        raise InputError(f"--box must be four numbers x,y,w,h (got {len(box)}: {text!r})")
    return box


def _device(name: str):
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name} requested but CUDA is not available on this machine (use --device cpu)")
    return torch.device(name)


def _build_tracker(args: argparse.Namespace):
    from .tracking.tracker import Tracker

    if args.weights is None:
        from .demo import default_weights

        args.weights = str(default_weights())
        print(f"no --weights given: using the default model {args.weights} (small, trained on synthetic data; "
              "pass an official MixFormerV2 checkpoint for full accuracy)", file=sys.stderr)
    tracker = Tracker.from_checkpoint(args.weights, preset=args.preset, device=_device(args.device), dataset=args.dataset,
                                      runtime=args.runtime)
    tracker.config = tracker.config.overridden(search_factor=args.search_factor, update_interval=args.update_interval,
                                               hold_below=args.hold_below, max_scale_change=args.max_scale_change)
    return tracker


def _runtime_option(parser: argparse.ArgumentParser) -> None:
    from .runtimes import DEFAULT_RUNTIME, RUNTIMES

    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help=f"how the network runs: fp32 (exact), bf16, onnx (onnxruntime), int8 (onnxruntime, "
                             f"int8 weights); default {DEFAULT_RUNTIME}: the fastest one that meets the accuracy bar with the weights "
                             "(int8 / bf16 where their checkpoint records it, else the exact onnx or fp32); an ONNX export folder as --weights runs "
                             "as exported (onnx or int8)")


def cmd_track(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .tracking.video import AnnotatedVideoWriter, open_source, write_boxes

    init_box = _parse_box(args.box)
    for out in (args.save_video, args.save_boxes):
        if out is not None:
            if Path(out).exists() and not args.overwrite:
                raise InputError(f"{out} exists; refusing to overwrite it (pass --overwrite)")
            Path(out).parent.mkdir(parents=True, exist_ok=True)
    tracker = _build_tracker(args)
    boxes: list[Sequence[float]] = []
    writer = None
    track_seconds = 0.0
    start = time.perf_counter()
    stopped_by: BaseException | None = None
    with open_source(args.source) as source:
        frames = iter(source)
        first = next(frames, None)
        if first is None:
            raise InputError(f"{args.source}: no frames")
        tracker.init(first, init_box)
        boxes.append(tuple(init_box))
        if args.save_video:
            size = (first.shape[1], first.shape[0])
            writer = AnnotatedVideoWriter(args.save_video, source.fps, size, overwrite=args.overwrite)
            writer.write(first, init_box, label="init")
        total = source.num_frames
        if args.max_frames is not None:
            total = min(total, args.max_frames) if total else args.max_frames
        bar = tqdm(total=total, initial=1, unit="frame", desc="tracking", disable=args.quiet)
        try:
            for frame in frames:
                if args.max_frames is not None and len(boxes) >= args.max_frames:
                    break
                t0 = time.perf_counter()
                result = tracker.track(frame)
                track_seconds += time.perf_counter() - t0
                boxes.append(result.box)
                if writer is not None:
                    writer.write(frame, result.box, label=None if math.isnan(result.score) else f"{result.score:.2f}")
                bar.update(1)
        except (KeyboardInterrupt, MixFormerError) as exc:
            stopped_by = exc  # keep what was tracked so far, then report
        finally:
            bar.close()
            if writer is not None:
                writer.close()
    if args.save_boxes:
        write_boxes(args.save_boxes, boxes, overwrite=args.overwrite)
    wall = time.perf_counter() - start
    fps = (len(boxes) - 1) / track_seconds if track_seconds > 0 else float("nan")
    print(
        f"{'stopped after' if stopped_by else 'tracked'} {len(boxes)} frames: "
        f"{fps:.1f} FPS tracking, {len(boxes) / wall:.1f} FPS end to end (decode + write included); "
        f"runtime {tracker.runtime.name}"
        + (" (auto: the fastest meeting the accuracy bar with these weights; --runtime fp32 for the exact path)"
           if args.runtime in (None, "auto") else "")
    )
    for what, path in (("boxes", args.save_boxes), ("video", args.save_video)):
        if path:
            print(f"{what}: {path}" + (" (partial)" if stopped_by else ""))
    if args.print_boxes:
        for b in boxes:
            print(",".join(f"{v:.2f}" for v in b))
    if isinstance(stopped_by, MixFormerError):
        raise stopped_by
    return 130 if stopped_by else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    print(run_demo(args.out, weights=args.weights, seed=args.seed, baselines=tuple(args.baselines),
                   device=_device(args.device), runtime=args.runtime))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from .config import get_preset
    from .evaluation.bench import bench_model, format_rows
    from .models import build_model, load_checkpoint

    torch.set_num_threads(args.threads)
    device = _device(args.device)
    rows = []
    for name in args.presets:
        rows.append(bench_model(name, build_model(get_preset(name).model).eval().to(device), args.seconds,
                                runtime=args.runtime))
    for path in args.weights:
        rows.append(bench_model(Path(path).name, load_checkpoint(path, device=device), args.seconds,
                                runtime=args.runtime))
    print(f"{args.threads} threads, {device}, batch 1 (weights do not change speed; presets use random ones)\n")
    print(format_rows(rows))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from .deploy.onnx import ENCODER_FILE, STEP_FILE, OnnxRuntime, export_onnx
    from .models import load_checkpoint
    from .runtimes import TorchRuntime

    if args.targets < 1:
        raise InputError(f"--targets must be a positive integer (got {args.targets})")
    model = load_checkpoint(args.weights, preset=args.preset)
    precision = "int8" if args.int8 or args.int8_weight_bits else "fp32"
    out = export_onnx(model, args.out, targets=args.targets, overwrite=args.overwrite, precision=precision,
                      int8_weight_bits=args.int8_weight_bits)
    # parity check on random crops: the exported graphs against the PyTorch fp32 path
    cfg, rng = model.config, np.random.default_rng(0)
    template = rng.standard_normal((args.targets, 3, cfg.template_size, cfg.template_size), dtype=np.float32)
    search = rng.standard_normal((args.targets, 3, cfg.search_size, cfg.search_size), dtype=np.float32)
    onnx_rt, torch_rt = OnnxRuntime.load(out), TorchRuntime(model)
    boxes, _ = onnx_rt.step(search, onnx_rt.encode(template, template))
    reference, _ = torch_rt.step(search, torch_rt.encode(template, template))
    error = float(np.abs(boxes - reference).max())
    print(f"exported {args.weights} ({cfg.depth} layers, search {cfg.search_size}, {args.targets} target(s), "
          f"{precision}{f', {onnx_rt.int8_weight_bits}-bit weights' if onnx_rt.int8_weight_bits else ''}) to {out}: {ENCODER_FILE}, {STEP_FILE}; max box difference to PyTorch {error:.2e} "
          "(normalised units)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .models.checkpoints import describe_checkpoint

    info = describe_checkpoint(args.checkpoint)
    cfg = info["config"]
    print(f"checkpoint  {info['path']}")
    print(f"format      {info['format']}")
    print(f"preset      {info['preset']}")
    print(f"parameters  {info['parameters']:,} in {info['tensors']} tensors ({info['dtype']})")
    print(f"sizes       search {cfg.search_size}, template {cfg.template_size}, patch {cfg.patch_size}")
    print(
        f"network     width {cfg.embed_dim}, depth {cfg.depth}, heads {cfg.num_heads}, MLP hidden {cfg.mlp_hidden} "
        f"(ratio {cfg.mlp_ratio:g}), {cfg.feat_sz} bins, score head {'yes' if cfg.score_head else 'no'}"
    )
    return 0


HOLD_BELOW_HELP = ("keep the last box while the confidence score is below this (needs a score head; not official; "
                   "default: the value recorded with the weights, else never)")
MAX_SCALE_CHANGE_HELP = ("let the box width and height change by at most this factor per frame, e.g. 1.02 (not "
                         "official; default: the value recorded with the weights, else free)")


def prefer_passive_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spin, unless the user chose (``OMP_WAIT_POLICY``).

    DataLoader workers share the cores with torch's compute threads, and spinning threads starve
    them: the default recipe trains at 109 instead of 100 samples/s on 2 cores with 1 worker (same
    losses). OpenMP reads the setting when torch loads it, so it only acts before ``import torch``.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cmd_train(args: argparse.Namespace) -> int:
    prefer_passive_openmp()
    from .training.recipes import parse_data_overrides
    from .training.trainer import train_from_recipe

    if args.epochs is not None and args.epochs < 1:
        raise InputError(f"--epochs must be a positive integer (got {args.epochs})")
    if args.workers is not None and args.workers < 0:
        raise InputError(f"--workers must be >= 0 (got {args.workers})")
    device = None if args.device == "auto" else args.device
    if device is not None:
        _device(device)  # clear error when CUDA is missing
    if args.chain:
        return _train_chain(args, device)
    if args.input:
        raise InputError("--input is for --chain")
    try:
        result = train_from_recipe(
            args.recipe,
            args.out,
            data_roots=parse_data_overrides(args.data),
            resume=args.resume,
            overwrite=args.overwrite,
            epochs=args.epochs,
            workers=args.workers,
            device=device,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(f"interrupted; continue from the last complete epoch with: --resume --out {args.out}", file=sys.stderr)
        return 130
    if result.model_path is not None:  # rank 0 only under torchrun
        print(f"trained {result.epochs_done} epochs ({result.global_step} steps); model: {result.model_path}; "
              f"checkpoints: {Path(args.out) / 'checkpoints'}; log: {Path(args.out) / 'log.csv'}")
    return 0


def _train_chain(args: argparse.Namespace, device: str | None) -> int:
    from .training.chain import run_chain
    from .training.recipes import parse_assignments, parse_data_overrides

    if args.epochs is not None:
        raise InputError("--epochs applies to one recipe; a chain sets each stage's epochs in its file")
    inputs = parse_assignments(args.input, "--input")
    try:
        paths = run_chain(args.chain, args.out, data_roots=parse_data_overrides(args.data), inputs=inputs,
                          resume=args.resume, overwrite=args.overwrite, workers=args.workers, device=device,
                          progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"interrupted; continue with: --chain {args.chain} --resume --out {args.out}", file=sys.stderr)
        return 130
    print(f"chain done: {len(paths)} stages; final model: {paths[-1]}")
    return 0


def _benchmark(args: argparse.Namespace):
    from .evaluation.results import resolve_benchmark

    return resolve_benchmark(args.dataset, args.root, split=args.split, sequences=args.sequence)


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation.runner import run_benchmark

    if args.device != "cpu":
        _device(args.device)  # clear error when CUDA is missing
    benchmark = _benchmark(args)
    summary = run_benchmark(
        benchmark,
        args.results,
        tracker=args.tracker,
        name=args.name,
        weights=args.weights,
        preset=args.preset,
        device=args.device,
        workers=args.workers,
        search_factor=args.search_factor,
        update_interval=args.update_interval,
        hold_below=args.hold_below,
        max_scale_change=args.max_scale_change,
        integer_boxes=args.integer_boxes,
        sequences=args.sequence,
        overwrite=args.overwrite,
        progress=not args.quiet,
        runtime=args.runtime,
    )
    print(summary.describe())
    return 0 if summary.ok else 1


def _result_args(items: Sequence[str]) -> list:
    """RESULTS arguments: a folder, or NAME=FOLDER to set the name shown in the table."""
    out = []
    for item in items:
        label, sep, path = item.partition("=")
        if sep and label and not Path(item).exists():
            out.append((label, path))
        else:
            out.append(item)
    return out


def cmd_report(args: argparse.Namespace) -> int:
    from .evaluation.report import evaluate, merge_runs, write_plots
    from .fileio import atomic_write_text

    report = evaluate(
        _result_args(args.results),
        _benchmark(args),
        convention=args.convention,
        allow_missing=args.allow_missing,
        pad_short=args.pad_short,
        sequences=args.sequence,
    )
    if args.merge_runs:
        report = merge_runs(report)
    for message in report.warnings:
        print(f"warning: {message}", file=sys.stderr)
    table = report.markdown()
    print(f"{report.describe()}\n\n{table}")
    if args.out:
        out = Path(args.out)
        if out.exists() and not args.overwrite:
            raise InputError(f"{out} exists; refusing to overwrite it (pass --overwrite)")
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, f"{report.describe()}\n\n{table}\n")
        print(f"table: {out}")
    if args.plots:
        for path in write_plots(report, args.plots):
            print(f"plot: {path}")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from .evaluation.submission import pack

    path = pack(args.server, args.results, args.root, args.out, overwrite=args.overwrite,
                integer_boxes=args.integer_boxes)
    print(f"{args.server} submission: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .config import PRESETS

    parser = argparse.ArgumentParser(prog="mixformerv2", description="MixFormerV2 single-object tracker")
    parser.add_argument("--version", action="version", version=f"mixformerv2 {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    track = sub.add_parser("track", help="track one object through a video, an image folder or a camera")
    track.add_argument("source", help="video file, folder of images, or camera index (0, 1, ...)")
    track.add_argument("--box", required=True, help="initial box on the first frame: x,y,w,h (pixels, top-left corner)")
    track.add_argument("--weights", help="checkpoint: official .pth.tar or mixformerv2 .safetensors (default: the shipped default model)")
    track.add_argument("--preset", choices=sorted(PRESETS), help="architecture (default: read from the checkpoint)")
    track.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    _runtime_option(track)
    track.add_argument("--dataset", help="use the official settings of a benchmark (lasot, got10k_test, trackingnet, ...)")
    track.add_argument("--search-factor", type=float, help="search region size relative to the target")
    track.add_argument("--update-interval", type=int, help="frames between online template updates")
    track.add_argument("--hold-below", type=float, help=HOLD_BELOW_HELP)
    track.add_argument("--max-scale-change", type=float, help=MAX_SCALE_CHANGE_HELP)
    track.add_argument("--max-frames", type=int, help="stop after this many frames (init frame included)")
    track.add_argument("--save-video", help="write an annotated video (.mp4)")
    track.add_argument("--save-boxes", help="write boxes, one x,y,w,h line per frame")
    track.add_argument("--overwrite", action="store_true", help="replace existing output files")
    track.add_argument("--print-boxes", action="store_true", help="print every box to stdout")
    track.add_argument("--quiet", action="store_true", help="no progress bar")
    track.set_defaults(func=cmd_track)

    demo = sub.add_parser("demo", help="track an embedded (generated) clip, scored against CSRT and KCF")
    demo.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    demo.add_argument("--weights", help="checkpoint (default: the shipped default model)")
    demo.add_argument("--seed", type=int, default=7, help="which generated clip")
    demo.add_argument("--baselines", nargs="*", default=["csrt", "kcf"], help="OpenCV trackers to compare with")
    demo.add_argument("--device", default="cpu")
    _runtime_option(demo)
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="parameters, FLOPs of one tracking step and FPS per preset")
    bench.add_argument("--presets", nargs="*", default=["mixformerv2-s", "mixformerv2-b"], choices=sorted(PRESETS))
    bench.add_argument("--weights", nargs="*", default=[], help="also measure these checkpoints")
    bench.add_argument("--threads", type=int, default=2)
    bench.add_argument("--seconds", type=float, default=3.0, help="timing budget per measurement")
    bench.add_argument("--device", default="cpu")
    _runtime_option(bench)
    bench.set_defaults(func=cmd_bench)

    export = sub.add_parser("export", help="export the template encoder and the tracking step as ONNX graphs")
    export.add_argument("--weights", required=True, help="checkpoint: official .pth.tar or mixformerv2 .safetensors")
    export.add_argument("--preset", choices=sorted(PRESETS), help="architecture (default: read from the checkpoint)")
    export.add_argument("--out", required=True, help="output folder (template_encoder.onnx, step.onnx, metadata)")
    export.add_argument("--targets", type=int, default=1, help="targets tracked per frame (static batch; default 1)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing export in --out")
    export.add_argument("--int8", action="store_true",
                        help="int8 step graph (dynamic quantisation of its weight matrices; the int8 runtime)")
    export.add_argument("--int8-weight-bits", type=int, choices=(7, 8),
                        help="bits of the int8 weights (implies --int8); default: 8 where this CPU has VNNI, else 7 "
                             "(x86 CPUs without VNNI saturate 8-bit products); 7 runs everywhere")
    export.set_defaults(func=cmd_export)

    info = sub.add_parser("info", help="describe a checkpoint: preset, sizes, parameter count")
    info.add_argument("checkpoint")
    info.set_defaults(func=cmd_info)

    train = sub.add_parser(
        "train",
        help="train a network from a recipe (multi-GPU: torchrun --nproc_per_node N -m mixformerv2 train ...)",
    )
    what = train.add_mutually_exclusive_group(required=True)
    what.add_argument("--recipe", help="built-in recipe name (mixformerv2-b-gt, tiny-cpu, ...) or a YAML file")
    what.add_argument("--chain", help="a distillation chain (mixformerv2-b, mixformerv2-s, tiny-chain) or a YAML file: "
                      "its stages run one after another in <out>/<k>-<stage>/, finished ones are skipped")
    train.add_argument("--input", action="append", metavar="NAME=PATH",
                       help="a chain input such as the MixViT teacher (repeatable), e.g. --input teacher=mixvit_b.pth.tar")
    train.add_argument("--data", action="append", metavar="NAME=ROOT",
                       help="dataset root, overriding the recipe's (repeatable), e.g. --data got10k=/data/got10k/train")
    train.add_argument("--out", required=True,
                       help="output folder: checkpoints, log.csv, TensorBoard, model.safetensors")
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the run in --out from its last complete epoch (starts afresh if --out is empty)")
    mode.add_argument("--overwrite", action="store_true",
                      help="start over in a non-empty --out (replaces training outputs only; other files are kept)")
    train.add_argument("--epochs", type=int, help="total number of epochs (overrides the recipe)")
    train.add_argument("--workers", type=int, help="data-loading worker processes per GPU/process")
    train.add_argument("--device", default="auto", help="auto (default: cuda if available), cpu or cuda")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    evaluation = sub.add_parser(
        "eval", help="run a tracker over a benchmark and write result files (parallel, resumable)")
    evaluation.add_argument("--dataset", required=True,
                            help="benchmark: lasot, got10k_val, got10k_test, trackingnet, otb, uav, nfs, tnl2k, ...")
    evaluation.add_argument("--root", required=True, help="the dataset's folder")
    evaluation.add_argument(
        "--split",
        help="LaSOT train/test/all/split file (default: test when the root holds training videos too), "
        "GOT-10k train/val/test, TrackingNet chunks",
    )
    evaluation.add_argument("--results", default="results",
                            help="results folder; files go to <results>/<name>/<benchmark>/<seq>.txt (default results)")
    evaluation.add_argument("--name", help="tracker folder name (default mixformerv2_<weights> or opencv_<tracker>)")
    evaluation.add_argument("--tracker", default="mixformerv2", choices=["mixformerv2", "csrt", "kcf", "mil"],
                            help="our tracker or an OpenCV baseline (default mixformerv2)")
    evaluation.add_argument("--weights", help="checkpoint (default: the shipped default model)")
    evaluation.add_argument("--preset", choices=sorted(PRESETS),
                            help="architecture (default: read from the checkpoint)")
    evaluation.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    _runtime_option(evaluation)
    evaluation.add_argument("--workers", type=int, default=1, help="parallel processes over sequences (default 1)")
    evaluation.add_argument("--search-factor", type=float, help="override the benchmark's search factor")
    evaluation.add_argument("--update-interval", type=int, help="override the benchmark's template update interval")
    evaluation.add_argument("--hold-below", type=float, help=HOLD_BELOW_HELP)
    evaluation.add_argument("--max-scale-change", type=float, help=MAX_SCALE_CHANGE_HELP)
    evaluation.add_argument("--integer-boxes", action="store_true",
                            help="truncate boxes to integers like the official writer (default: 4 decimals)")
    evaluation.add_argument("--sequence", action="append", help="run only this sequence (repeatable)")
    evaluation.add_argument("--overwrite", action="store_true", help="re-run sequences that already have results")
    evaluation.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluation.set_defaults(func=cmd_eval)

    report = sub.add_parser("report", help="score result folders: markdown table (AUC, OP50, OP75, P-norm, P, FPS) "
                                           "and success/precision plots")
    report.add_argument("results", nargs="+",
                        help="result folders (ours: <results>/<name>; pytracking/OSTrack: <tracker>/<param>); "
                             "NAME=FOLDER sets the name shown")
    report.add_argument("--dataset", required=True, help="benchmark (lasot, got10k_val, otb, uav, ...)")
    report.add_argument("--root", required=True, help="the dataset's folder")
    report.add_argument("--split", help="as for eval")
    report.add_argument("--sequence", action="append", help="score only this sequence (repeatable)")
    report.add_argument("--convention", default="pytracking", choices=["pytracking", "got10k"],
                        help="metric definitions: pytracking (official MixFormerV2 analysis, default) or the "
                             "GOT-10k toolkit")
    report.add_argument("--merge-runs", action="store_true",
                        help="average the runs <name>_000, <name>_001, ... of a tracker into one row (mean ± std)")
    report.add_argument("--plots", help="folder for success_plot.png, precision_plot.png, ...")
    report.add_argument("--out", help="also write the table to this markdown file")
    report.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    report.add_argument("--allow-missing", action="store_true",
                        help="evaluate only the sequences every tracker has (warns, naming the others)")
    report.add_argument("--pad-short", action="store_true",
                        help="score results shorter than the ground truth with zero boxes (pytracking; not LaSOT)")
    report.set_defaults(func=cmd_report)

    pack_parser = sub.add_parser("pack", help="make a GOT-10k or TrackingNet test-server submission (zip)")
    pack_parser.add_argument("server", choices=["got10k", "trackingnet"])
    pack_parser.add_argument("results", help="result folder (ours: <results>/<name>; pytracking: <tracker>/<param>)")
    pack_parser.add_argument("--root", required=True,
                             help="dataset folder: GOT-10k root or its test/ folder; TrackingNet root (with TEST/)")
    pack_parser.add_argument("--out", help="zip file (default: <result folder>.zip)")
    pack_parser.add_argument("--overwrite", action="store_true", help="replace an existing package")
    pack_parser.add_argument("--integer-boxes", action="store_true",
                             help="truncate boxes to integers like the official transform scripts")
    pack_parser.set_defaults(func=cmd_pack)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MixFormerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
