"""ONNX export (two graphs) and the onnxruntime runtime.

``export_onnx(model, out_dir)`` writes::

    template_encoder.onnx   template (N,3,T,T), online_template (N,3,T,T) -> keys, values (L,N,H,2*Nt,D)
    step.onnx               search (N,3,S,S), keys, values -> boxes (N,4) cx,cy,w,h / S,
                            probs (N,4,bins) (l, r, t, b), scores (N,) logits (0 without a score head)
    mixformerv2_onnx.json   model config, number of targets N, opset, precision, SHA-256 of both graphs

Static shapes (N fixed at export), positional tensor inputs only, checked with ``onnx.checker``.
``precision="int8"`` quantises the step graph's weight matrices dynamically (onnxruntime: int8
weights per output channel, activations quantised per call, VNNI integer GEMMs); the template
encoder, which runs only at init and at template updates, stays float32. The weights keep to 7 bits
where the exporting CPU lacks VNNI (its uint8 x int8 products saturate at 8 bits, see
:mod:`..hardware`), and the metadata says how many bits they have.
:class:`OnnxRuntime` runs them with onnxruntime behind the tracker's runtime protocol; this module
and the tracker import no torch, so ``Tracker(OnnxRuntime.load(dir))`` works where only numpy,
OpenCV and onnxruntime are installed.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config import ModelConfig, recorded_tracker_settings
from ..errors import CheckpointError, ConfigError
from ..hardware import int8_weights_saturate

ENCODER_FILE = "template_encoder.onnx"
STEP_FILE = "step.onnx"
META_FILE = "mixformerv2_onnx.json"
FORMAT = "mixformerv2-onnx"
OPSET = 17
PRECISIONS = ("fp32", "int8")


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("the onnx and int8 runtimes need onnxruntime: pip install onnxruntime "
                          "(or mixformerv2[deploy]); the torch runtimes (fp32, bf16) work without it") from None
    return onnxruntime


def cache_shape(config: ModelConfig, targets: int) -> tuple[int, ...]:
    """(depth, N, heads, 2 * template tokens, head dim): shape of the keys and of the values."""
    return (config.depth, targets, config.num_heads, 2 * config.num_template_tokens,
            config.embed_dim // config.num_heads)


# ------------------------------------------------------------------------------------------------
# export (needs torch and onnx)
# ------------------------------------------------------------------------------------------------
def export_graphs(model, targets: int = 1, opset: int = OPSET, precision: str = "fp32",
                  int8_weight_bits: int | None = None) -> tuple[bytes, bytes]:
    """The two graphs of ``model`` (a MixFormerV2) for ``targets`` targets, as ONNX bytes; ``precision``
    ``int8`` quantises the step graph (:func:`quantize_int8`, ``int8_weight_bits``)."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, template, online_template):
            cache = self.net.encode_templates(template, online_template)
            return cache.keys, cache.values

    class Step(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, search, keys, values):
            from ..models.mixformerv2 import TemplateCache

            out = self.net.step(search, TemplateCache(keys, values), softmax=True)
            probs = torch.stack([out[f"prob_{e}"] for e in ("l", "r", "t", "b")], dim=1)
            scores = out.get("pred_scores")
            if scores is None:
                scores = torch.zeros(search.shape[0], dtype=search.dtype)
            return out["pred_boxes"][:, 0], probs, scores

    if not isinstance(targets, int) or targets < 1:
        raise ConfigError(f"targets must be a positive integer (got {targets!r})")
    _check_precision(precision)
    cfg = model.config
    model = model.float().eval().cpu()
    t = torch.randn(targets, 3, cfg.template_size, cfg.template_size)
    s = torch.randn(targets, cfg.search_channels, cfg.search_size, cfg.search_size)
    with torch.no_grad():
        cache = model.encode_templates(t, t)
    graphs = [
        export_module(Encoder(model), (t, t), ["template", "online_template"], ["keys", "values"], opset),
        export_module(Step(model), (s, cache.keys, cache.values), ["search", "keys", "values"],
                      ["boxes", "probs", "scores"], opset),
    ]
    _check_graphs(graphs)
    encoder, step = graphs
    return encoder, (quantize_int8(step, int8_weight_bits) if precision == "int8" else step)


def export_module(module, args: tuple, input_names: list[str], output_names: list[str], opset: int = OPSET) -> bytes:
    """``module`` traced on ``args`` as an ONNX graph (bytes) with static shapes and named positional inputs."""
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation / tracer notes
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=opset, input_names=input_names,
                          output_names=output_names, do_constant_folding=True)
    return buffer.getvalue()


def int8_bits(weight_bits: int | None = None) -> int:
    """The int8 weights' bits: ``weight_bits`` (7 or 8), or for None the safe choice for this CPU
    (7 where its uint8 x int8 products saturate, :func:`..hardware.int8_weights_saturate`; else 8)."""
    if weight_bits is None:
        return 7 if int8_weights_saturate() else 8
    if weight_bits not in (7, 8):
        raise ConfigError(f"int8 weights have 7 or 8 bits, not {weight_bits!r}")
    return weight_bits


def quantize_int8(graph: bytes, weight_bits: int | None = None) -> bytes:
    """``graph`` with the MatMuls that multiply by a weight matrix made int8 (dynamic quantisation).

    Per-channel int8 weights with ``weight_bits`` bits (:func:`int8_bits`; 7 is onnxruntime's
    ``reduce_range``); activations quantised per call (uint8). Products of two activations
    (attention) stay float32.
    """
    weight_bits = int8_bits(weight_bits)
    import tempfile

    _require_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def not_preprocessing_advice(record: logging.LogRecord) -> bool:  # the quantiser's generic root-logger note
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(not_preprocessing_advice)
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            src.write_bytes(graph)
            quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                             reduce_range=weight_bits == 7)
            return dst.read_bytes()
    finally:
        root.removeFilter(not_preprocessing_advice)


def _check_graphs(graphs: Sequence[bytes]) -> None:
    try:
        import onnx
    except ImportError:
        raise ConfigError("export needs the onnx package: pip install onnx (or mixformerv2[deploy])") from None
    for data in graphs:
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown ONNX precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


def runtime_name(precision: str) -> str:
    """The runtime (``runtimes.RUNTIMES``) that graphs of ``precision`` make: onnx (float32) or int8."""
    return "onnx" if _check_precision(precision) == "fp32" else precision


def export_onnx(model, out_dir: str | os.PathLike, targets: int = 1, overwrite: bool = False,
                opset: int = OPSET, precision: str = "fp32", int8_weight_bits: int | None = None) -> Path:
    """Write both graphs (:func:`export_graphs`) and their metadata to ``out_dir`` (atomically, file by file)."""
    from ..fileio import atomic_write_bytes, atomic_write_text

    out = Path(out_dir)
    existing = [name for name in (ENCODER_FILE, STEP_FILE, META_FILE) if (out / name).exists()]
    if existing and not overwrite:
        raise ConfigError(f"{out} already holds an export ({', '.join(existing)}); pass --overwrite to replace it")
    weight_bits = int8_bits(int8_weight_bits) if precision == "int8" else None
    encoder, step = export_graphs(model, targets, opset, precision, weight_bits)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / ENCODER_FILE, encoder)
    atomic_write_bytes(out / STEP_FILE, step)
    meta = {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "targets": targets,
        "opset": opset,
        "precision": precision,
        **({"int8_weight_bits": weight_bits} if weight_bits else {}),
        # the tracker settings recorded with the weights (models.checkpoints.TRACKER_DEFAULTS)
        **({"tracker": model.tracker_defaults} if getattr(model, "tracker_defaults", None) else {}),
        "sha256": {ENCODER_FILE: hashlib.sha256(encoder).hexdigest(), STEP_FILE: hashlib.sha256(step).hexdigest()},
    }
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out


# ------------------------------------------------------------------------------------------------
# the runtime (numpy + onnxruntime only)
# ------------------------------------------------------------------------------------------------
class OnnxRuntime:
    """The tracker's runtime on onnxruntime sessions of the two graphs.

    ``OnnxRuntime.load(dir)``: an export directory (checked against its metadata: format, hashes,
    input shapes). ``OnnxRuntime.from_model(model)``: exports in memory, one pair of graphs per
    number of targets used.
    """

    def __init__(self, config: ModelConfig, sessions: dict[int, tuple[Any, Any]], model=None,
                 threads: int | None = None, precision: str = "fp32", int8_weight_bits: int | None = None) -> None:
        self.config = config
        self.name = runtime_name(precision)
        self.tracker_defaults: dict = dict(getattr(model, "tracker_defaults", None) or {})  # see load()
        self.precision = precision
        self.int8_weight_bits = int8_bits(int8_weight_bits) if precision == "int8" else None
        self._sessions = sessions
        self._model = model  # set when graphs for other target counts can be exported on demand
        self.threads = threads
        self.device = "cpu"

    # -- construction ----------------------------------------------------------------------------
    @staticmethod
    def session(data: bytes | str, threads: int | None = None):
        """An onnxruntime CPU session on a graph (bytes or path), with the runtime's settings."""
        ort = _require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default (physical cores)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])

    @classmethod
    def load(cls, directory: str | os.PathLike, threads: int | None = None) -> "OnnxRuntime":
        root = Path(directory)
        meta_path = root / META_FILE
        if not meta_path.is_file():
            raise CheckpointError(f"{root}: not an ONNX export of mixformerv2 (no {META_FILE}); "
                                  "make one with `mixformerv2 export --weights CKPT --out DIR`")
        try:
            meta = json.loads(meta_path.read_text())
            config = ModelConfig.from_dict(meta["config"])
            targets = int(meta["targets"])
        except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"{meta_path}: unreadable export metadata ({exc})") from None
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
        precision = meta.get("precision", "fp32")
        if precision not in PRECISIONS:
            raise CheckpointError(f"{meta_path}: unknown precision {precision!r} (expected one of {PRECISIONS})")
        weight_bits = meta.get("int8_weight_bits", 8) if precision == "int8" else None  # older exports: 8
        if weight_bits not in (None, 7, 8):
            raise CheckpointError(f"{meta_path}: int8_weight_bits {weight_bits!r} (expected 7 or 8)")
        if weight_bits == 8 and int8_weights_saturate():
            warnings.warn(f"{root}: this int8 export has 8-bit weights, whose products saturate on this CPU (x86 "
                          "without VNNI) and move the boxes; export it here again, or with --int8-weight-bits 7",
                          RuntimeWarning, stacklevel=2)
        graphs = {}
        for name in (ENCODER_FILE, STEP_FILE):
            path = root / name
            if not path.is_file():
                raise CheckpointError(f"{root}: {name} is missing")
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != meta.get("sha256", {}).get(name):
                raise CheckpointError(f"{path} does not match {META_FILE} (graph and metadata come from different "
                                      "exports, or the file was changed); export again")
            graphs[name] = data
        runtime = cls(config, {targets: (cls.session(graphs[ENCODER_FILE], threads),
                                         cls.session(graphs[STEP_FILE], threads))}, threads=threads,
                      precision=precision, int8_weight_bits=weight_bits)
        runtime._check_shapes(targets)
        runtime.tracker_defaults = recorded_tracker_settings(meta.get("tracker", {}), str(meta_path))
        return runtime

    @classmethod
    def from_model(cls, model, device=None, threads: int | None = None, targets: int = 1,
                   precision: str = "fp32") -> "OnnxRuntime":
        if device is not None and str(device) != "cpu":
            raise ConfigError(f"the {runtime_name(precision)} runtime runs on the CPU (onnxruntime CPU provider)")
        _require_onnxruntime()
        runtime = cls(model.config, {}, model=model, threads=threads, precision=precision)
        runtime._sessions_for(targets)
        return runtime

    def _sessions_for(self, targets: int):
        if targets not in self._sessions:
            if self._model is None:
                have = ", ".join(str(n) for n in sorted(self._sessions))
                raise ConfigError(f"this ONNX export runs {have} target(s) per frame, not {targets}; "
                                  f"export with --targets {targets}")
            encoder, step = export_graphs(self._model, targets, precision=self.precision,
                                          int8_weight_bits=self.int8_weight_bits)
            self._sessions[targets] = (self.session(encoder, self.threads), self.session(step, self.threads))
            self._check_shapes(targets)
        return self._sessions[targets]

    def _check_shapes(self, targets: int) -> None:
        """The graphs' input shapes must be the ones the config implies (graph/weights mismatch)."""
        cfg = self.config
        encoder, step = self._sessions[targets]
        want = {
            "template": [targets, 3, cfg.template_size, cfg.template_size],
            "online_template": [targets, 3, cfg.template_size, cfg.template_size],
            "search": [targets, cfg.search_channels, cfg.search_size, cfg.search_size],
            "keys": list(cache_shape(cfg, targets)),
            "values": list(cache_shape(cfg, targets)),
        }
        for session in (encoder, step):
            for node in session.get_inputs():
                if list(node.shape) != want.get(node.name):
                    raise CheckpointError(f"ONNX graph input {node.name} has shape {node.shape}, but the model config "
                                          f"implies {want.get(node.name)}: the graphs do not belong to this config")
        bins = [o.shape for o in step.get_outputs() if o.name == "probs"]
        if bins != [[targets, 4, cfg.feat_sz]]:
            raise CheckpointError(f"ONNX step graph gives probs {bins}, the config implies {[targets, 4, cfg.feat_sz]}")

    # -- the runtime protocol ------------------------------------------------------------------------
    def encode(self, template: np.ndarray, online: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        encoder, _ = self._sessions_for(template.shape[0])
        keys, values = encoder.run(None, {"template": np.ascontiguousarray(template, np.float32),
                                          "online_template": np.ascontiguousarray(online, np.float32)})
        return keys, values

    def step(self, search: np.ndarray, cache: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        _, step = self._sessions_for(search.shape[0])
        boxes, _, scores = step.run(None, {"search": np.ascontiguousarray(search, np.float32),
                                           "keys": cache[0], "values": cache[1]})
        return boxes, (scores if self.config.score_head else None)

    def run_step(self, search: np.ndarray, cache: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
        """All outputs of the step graph (boxes, probs, scores)."""
        _, step = self._sessions_for(search.shape[0])
        names = [o.name for o in step.get_outputs()]
        values = step.run(None, {"search": np.ascontiguousarray(search, np.float32), "keys": cache[0], "values": cache[1]})
        return dict(zip(names, values))

    def replace(self, cache, indices: Sequence[int], fresh):
        keys, values = cache
        for j, i in enumerate(indices):
            keys[:, i] = fresh[0][:, j]
            values[:, i] = fresh[1][:, j]
        return keys, values


def load_onnx_tracker(directory: str | os.PathLike, config=None, dataset: str | None = None,
                      threads: int | None = None):
    """A :class:`~mixformerv2.tracking.tracker.Tracker` on an ONNX export (no torch needed)."""
    from ..tracking.tracker import Tracker

    return Tracker(OnnxRuntime.load(directory, threads=threads), config=config, dataset=dataset)
