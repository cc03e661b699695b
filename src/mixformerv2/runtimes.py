"""Inference runtimes: how the network's two calls run, behind one small protocol.

The tracker does crops, normalisation (numpy float32), map-back and the online-template policy;
a runtime only runs the network:

* ``encode(template, online) -> cache``: the two templates (N, 3, T, T) float32 -> an opaque
  per-target template cache (per-layer keys / values);
* ``step(search, cache) -> (boxes, scores)``: search crops (N, C, S, S) float32 (C = the config's
  ``search_channels``: 3, or 6 with the frame difference of ``motion_input``) -> boxes (N, 4)
  float32 normalised cx, cy, w, h and score logits (N,) float32, or None without a score head;
* ``replace(cache, indices, fresh) -> cache``: targets ``indices`` take the rows of ``fresh``.

Inputs and outputs are numpy arrays, so a runtime that does not use torch (onnxruntime) works
without it. Runtimes: ``fp32`` (torch, exact: the reference), ``bf16`` (torch, bfloat16 GEMMs:
AVX-512 BF16 / AMX matrix units), ``onnx`` (onnxruntime on the exported graphs,
:mod:`.deploy.onnx`), ``int8`` (onnxruntime on the same graphs with the step's weight matrices
dynamically quantised to int8: VNNI integer GEMMs; measured 2.4x ``onnx`` for MixFormerV2-S, where
torch's dynamic quantisation of the MLPs was slower than bf16 and less accurate), and ``auto``
(the default, :func:`resolve_runtime`: the fastest runtime meeting the accuracy bar for the weights).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from .errors import ConfigError

RUNTIMES = ("auto", "fp32", "bf16", "int8", "onnx")
FAST_RUNTIMES = ("int8", "bf16")  # reduced-precision paths, fastest first (benchmarks/speed.py)
# auto: the fastest runtime that meets the accuracy bar for the weights (resolve_runtime)
DEFAULT_RUNTIME = "auto"


class Runtime(Protocol):
    name: str
    config: Any  # the network's ModelConfig

    def encode(self, template: np.ndarray, online: np.ndarray) -> Any: ...

    def step(self, search: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray | None]: ...

    def replace(self, cache: Any, indices: Sequence[int], fresh: Any) -> Any: ...


class TorchRuntime:
    """The PyTorch network in float32 (``fp32``) or with bfloat16 GEMMs (``bf16``).

    ``fp32`` is the exact path (equal to the official forward within float rounding). ``bf16``
    runs the linear layers of the blocks (nearly all the arithmetic) as bfloat16 GEMMs on weights
    converted once, with the residual stream, norms, attention and heads in float32 (all-bfloat16
    drifts: a tracker feeds each box into the next crop). The model given is not changed.
    """

    def __init__(self, model, name: str = "fp32", device=None) -> None:
        import torch

        if name not in ("fp32", "bf16"):
            raise ConfigError(f"unknown torch runtime {name!r} (fp32 or bf16)")
        self.name = name
        self.config = model.config
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        model = model.to(self.device).eval()
        if name == "bf16":
            from .hardware import bf16_emulation_note  # torch-only, like this class

            note = bf16_emulation_note(self.device)
            if note:
                warnings.warn(f"runtime bf16: {note}", RuntimeWarning, stacklevel=2)
            model = bf16_linear_model(model)
        self.model = model

    def _tensor(self, x: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device, non_blocking=True)

    def encode(self, template: np.ndarray, online: np.ndarray):
        import torch

        with torch.inference_mode():
            return self.model.encode_templates(self._tensor(template), self._tensor(online))

    def step(self, search: np.ndarray, cache) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        with torch.inference_mode():
            out = self.model.step(self._tensor(search), cache, softmax=True)
        boxes = out["pred_boxes"][:, 0].float().cpu().numpy()
        scores = out.get("pred_scores")
        return boxes, (scores.float().cpu().numpy() if scores is not None else None)

    def replace(self, cache, indices: Sequence[int], fresh):
        import torch

        with torch.inference_mode():
            for j, i in enumerate(indices):
                cache.keys[:, i] = fresh.keys[:, j]
                cache.values[:, i] = fresh.values[:, j]
        return cache


@functools.cache
def _bf16_linear_class():
    """The bfloat16 linear layer, defined on first use (this module imports no torch)."""
    import torch
    import torch.nn.functional as F

    class Bf16Linear(torch.nn.Module):
        """float32 in / out; the product in bfloat16 (float32 accumulation), bias in float32."""

        def __init__(self, linear: torch.nn.Linear) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(linear.weight.detach().to(torch.bfloat16), requires_grad=False)
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().clone(),
                                                                           requires_grad=False)

        def forward(self, x):
            y = F.linear(x.to(torch.bfloat16), self.weight).to(x.dtype)
            return y if self.bias is None else y + self.bias

    return Bf16Linear


def bf16_linear_model(model):
    """A copy of ``model`` whose block linear layers (qkv, proj, fc1, fc2) multiply in bfloat16."""
    import copy

    import torch

    model = copy.deepcopy(model)
    layer = _bf16_linear_class()
    for block in model.backbone.blocks:
        for parent in (block.attn, block.mlp):
            for name, child in list(parent.named_children()):
                if isinstance(child, torch.nn.Linear):
                    setattr(parent, name, layer(child))
    return model


def _onnx_factory(model, name: str, device=None):
    from .deploy.onnx import OnnxRuntime

    return OnnxRuntime.from_model(model, device=device, precision="int8" if name == "int8" else "fp32")


_FACTORIES: dict[str, Callable[..., Runtime]] = {
    "fp32": TorchRuntime,
    "bf16": TorchRuntime,
    "int8": _onnx_factory,
    "onnx": _onnx_factory,
}


def onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def runs_fast_here(name: str) -> bool:
    """Whether this CPU runs the fast runtime ``name`` on its own matrix units: ``int8`` needs VNNI /
    AMX int8 (and onnxruntime), ``bf16`` AVX-512 BF16 / AMX (elsewhere bfloat16 is emulated, slowly)."""
    from .hardware import has_vnni, native_bf16

    if name == "int8":
        return onnx_available() and has_vnni()
    if name == "bf16":
        return native_bf16("cpu")
    raise ConfigError(f"runs_fast_here: {name!r} is not a fast runtime ({' or '.join(FAST_RUNTIMES)})")


def resolve_runtime(name: str | None, model, device=None) -> str:
    """The concrete runtime for ``name``; ``auto`` (the default) is the fastest runtime that meets the
    accuracy bar (forced IoU >= 0.98 and AUC within 0.5 point of fp32, ``evaluation.bench``) with the
    model's weights on this machine. On the CPU, in the speed order of benchmarks/speed.py:

    * ``int8`` on a CPU with VNNI / AMX int8, ``bf16`` on one with AVX-512 BF16 / AMX, each only when
      the weights' checkpoint records that it meets the bar with them
      (``model.runtimes_meeting_bar``, written by ``benchmarks/runtime_fidelity.py --record``). The
      bar is met in expectation, not box for box, and is a property of the weights: a checkpoint
      without the record (an official one) gets the exact boxes;
    * else ``onnx`` (the exact boxes, 1.2-1.6x fp32 on 2 cores) when onnxruntime is installed;
    * else ``fp32``, which is also the choice on a GPU (the fast paths are measured on CPUs only).
    """
    name = (name or DEFAULT_RUNTIME).lower()
    if name != "auto":
        return name
    if device is not None:
        on_cpu = str(device).startswith("cpu")
    else:
        on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    if not on_cpu:
        return "fp32"
    measured = set(getattr(model, "runtimes_meeting_bar", ()))
    for fast in FAST_RUNTIMES:
        if fast in measured and runs_fast_here(fast):
            return fast
    return "onnx" if onnx_available() else "fp32"


def make_runtime(model, name: str | None = None, device=None) -> Runtime:
    """The runtime ``name`` (default :data:`DEFAULT_RUNTIME`) for a :class:`MixFormerV2` model."""
    name = resolve_runtime(name, model, device)
    if name not in _FACTORIES:
        raise ConfigError(f"unknown runtime {name!r}; available: {', '.join(RUNTIMES)}")
    return _FACTORIES[name](model, name, device=device)
