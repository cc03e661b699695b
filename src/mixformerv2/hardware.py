"""What the machine's matrix units do natively, so fast paths are used only where they are fast and exact.

* bfloat16 on a CPU without AVX-512 BF16 or AMX is emulated: on a 2-core AVX2 EPYC, bf16-autocast
  training of the default model ran at 4 samples/s against 41 in float32.
* int8 on an x86 CPU without VNNI: onnxruntime multiplies uint8 activations by int8 weights with
  ``vpmaddubsw``, which adds pairs of products in int16 and saturates; 7-bit weights cannot
  overflow it (on that EPYC, the default model's step boxes moved by 7.6e-3 with 8-bit weights and
  2.0e-3 with 7-bit ones).

Torch is imported only where a question needs it, so the onnxruntime-only install can ask too.
"""

from __future__ import annotations

import functools
import platform
from typing import Any

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@functools.lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str] | None:
    """The CPU feature flags of ``/proc/cpuinfo`` (Linux), or None where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def _is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def has_vnni() -> bool:
    """True on an x86 CPU with VNNI or AMX int8: integer GEMMs at full speed, without saturation.
    False on other CPUs (their int8 paths are not measured here) and where the flags cannot be read."""
    if not _is_x86():
        return False
    flags = cpu_flags()
    if flags is None:
        try:
            import torch

            return bool(torch.cpu._is_vnni_supported())
        except (ImportError, AttributeError, RuntimeError):
            return False
    return any(flag in flags for flag in VNNI_FLAGS)


def int8_weights_saturate() -> bool:
    """True where onnxruntime's uint8 x int8 products may saturate (x86 without VNNI), so int8
    weights must keep to 7 bits; unknown x86 CPUs count as saturating (7 bits is always safe)."""
    return _is_x86() and not has_vnni()


@functools.lru_cache(maxsize=None)
def _cpu_native_bf16() -> bool:
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(check() for check in checks if check is not None)
    except RuntimeError:  # an unusual build without cpuinfo
        return False


def native_bf16(device: Any = "cpu") -> bool:
    """True when bfloat16 matrix products on ``device`` run in hardware (AVX-512 BF16 / AMX on a
    CPU; Ampere or newer on CUDA), i.e. where bf16 is a speed-up rather than an emulation."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return _cpu_native_bf16()
    return True  # other backends (mps, xpu) decide for themselves


def bf16_emulation_note(device: Any = "cpu") -> str | None:
    """None where bfloat16 is native on ``device`` (:func:`native_bf16`), else why it is not, for messages."""
    if native_bf16(device):
        return None
    return f"{describe_device(device)} has no native bfloat16 matrix units, so bf16 is emulated and slower than fp32"


def describe_device(device: Any = "cpu") -> str:
    """A short name for messages: the CPU's vector instruction set torch dispatches to (``AVX2``,
    ``AVX512``, ...) or the GPU's name."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"CPU with {torch.backends.cpu.get_cpu_capability()}"
    return device.type
