"""CPU proof of the distillation chain: run the small `tiny-chain` end to end on synthetic data
(its teacher's backbone is the shipped default model's), then measure every stage's model side by
side: parameters, GFLOPs of the per-frame full forward, tracker FPS (crop -> box) and success AUC
on held-out synthetic sequences.

    python benchmarks/distill_chain.py [--out runs/tiny-chain] [--train-sequences 60] [--eval-sequences 12]

Re-running resumes: finished stages are skipped. The stage `d4to2` still holds its 4 layers with
layers 0 and 2 gated to zero; it is measured after removing them (identical outputs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from mixformerv2.config import TrackerConfig
from mixformerv2.data.synthetic import write_got10k
from mixformerv2.demo import default_weights
from mixformerv2.evaluation.bench import HELD_OUT_SEED, count_flops, held_out_sequences, timed_fps
from mixformerv2.evaluation.compare import compare_trackers
from mixformerv2.geometry import clip_box, crop_around, map_back
from mixformerv2.models.checkpoints import load_checkpoint
from mixformerv2.models.mixformerv2 import MixFormerV2
from mixformerv2.models.mixvit import MixViT, MixViTConfig, load_teacher
from mixformerv2.tracking.tracker import IMAGENET_MEAN, IMAGENET_STD, Tracker
from mixformerv2.training.chain import check_chain, load_chain, run_chain
from mixformerv2.training.distill import fit_init_state
from mixformerv2.training.recipes import load_recipe


class TeacherTracker:
    """The MixViT teacher behind the OpenCV contract: fixed templates, full forward per frame."""

    def __init__(self, model: MixViT, search_factor: float, template_factor: float = 2.0) -> None:
        self.model, self.cfg = model.eval(), model.config
        self.search_factor, self.template_factor = search_factor, template_factor
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def _tensor(self, patch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(patch[None]).permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std

    def init(self, frame, box) -> None:
        self.state = [float(v) for v in box]
        self.template = self._tensor(crop_around(frame, self.state, self.template_factor, self.cfg.template_size)[0])

    @torch.inference_mode()
    def update(self, frame):
        size = self.cfg.search_size
        patch, info = crop_around(frame, self.state, self.search_factor, size)
        box = self.model(self.template, self.template, self._tensor(patch))["pred_boxes"][0, 0]
        mapped = map_back((box * size / info.resize_factor).tolist(), self.state, size, info.resize_factor)
        self.state = clip_box(mapped, frame.shape[0], frame.shape[1], margin=10)
        return True, tuple(self.state)


def teacher_flops(model: MixViT) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    c = model.config
    t = torch.randn(1, 3, c.template_size, c.template_size)
    s = torch.randn(1, 3, c.search_size, c.search_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(t, t, s)
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/tiny-chain")
    parser.add_argument("--chain", default="tiny-chain")
    parser.add_argument("--train-sequences", type=int, default=60)
    parser.add_argument("--eval-sequences", type=int, default=12)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)

    data = out / "data"
    if not (data / "list.txt").is_file():
        write_got10k(data, args.train_sequences, seed=0, workers=2)
    chain = load_chain(args.chain)
    start = time.perf_counter()
    inputs = {"backbone": str(default_weights())} if "backbone" in chain.inputs else {}
    paths = run_chain(chain, out / "chain", data_roots={"got10k": str(data)}, inputs=inputs, resume=True,
                      progress=False)
    chain_minutes = (time.perf_counter() - start) / 60
    recipes = check_chain(chain, out / "chain", inputs)
    search_factor = float(recipes[0].processing.get("search_factor", 4.5))

    sequences = held_out_sequences(args.eval_sequences)
    frame = sequences[0][0][0]

    rows = []
    stages = list(zip(chain.stages, paths))
    if "backbone" in inputs:  # the reference the teacher's backbone came from
        reference = load_recipe("mixformerv2-tiny")
        stages.insert(0, (("default model (input backbone)", reference), Path(inputs["backbone"])))
    for (name, recipe), path in stages:
        if isinstance(recipe.model, MixViTConfig):
            model = load_teacher(path)
            tracker = TeacherTracker(model, search_factor)
            gflops = teacher_flops(model)
            label = f"{name} (MixViT, {recipe.model.depth} layers)"
        else:
            model = load_checkpoint(path)
            removed = recipe.train.remove_layers
            if removed:  # gamma reached 0: remove the gated layers physically (same outputs)
                pruned = MixFormerV2(model.config.replace(depth=model.config.depth - len(removed)))
                pruned.load_state_dict(fit_init_state(model.state_dict(), pruned.state_dict(), remove=removed))
                model = pruned.eval()
            tracker = Tracker(model, TrackerConfig(search_factor=search_factor))
            gflops = count_flops(model.config)[0]
            label = f"{name} ({model.config.depth} layers, MLP ratio {model.config.mlp_ratio:g}, {model.config.feat_sz} bins)"
        params = sum(p.numel() for p in model.state_dict().values())
        scored = compare_trackers({label: lambda t=tracker: t}, sequences)[0]
        tracker.init(frame, sequences[0][1][0])
        fps = timed_fps(lambda: tracker.update(frame), 2.0)
        rows.append((label, recipe.train.stage, params, gflops, fps, scored.auc))

    print(f"\nchain {chain.name}: {len(paths)} stages ({chain_minutes:.1f} min this run); "
          f"held-out: {args.eval_sequences} synthetic sequences, seeds ({HELD_OUT_SEED}, i); {args.threads} threads\n")
    print("| stage | training | parameters | GFLOPs / frame | FPS (tracker) | success AUC |")
    print("|---|---|---:|---:|---:|---:|")
    for label, stage, params, gflops, fps, auc in rows:
        print(f"| {label} | {stage} | {params / 1e3:.0f}k | {gflops:.4f} | {fps:.0f} | {auc:.1f} |")


if __name__ == "__main__":
    main()
