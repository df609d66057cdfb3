"""The numeric precision of training and inference, and ``"auto"``: bf16 only where the hardware computes it.

- ``"fp32"``: float32 throughout.
- ``"bf16"``: bfloat16 (8-bit mantissa, float32's exponent range, so no loss scaling): the convolutions of
  ``torch.autocast`` in training, the weights and activations at inference.
- ``"fp16"``: float16 mixed precision with loss scaling, CUDA only.
- ``"auto"``: ``"bf16"`` where it is native, ``"fp32"`` elsewhere. Native means a GPU that
  ``torch.cuda.is_bf16_supported()`` accepts, or a CPU whose oneDNN kernels run bf16 in hardware
  (``torch.ops.mkldnn._is_mkldnn_bf16_supported()``: AVX512 with BF16 or AMX on x86, BF16 on Arm).

Why ``"auto"``: bf16 is not faster everywhere. Measured with ``make bench ARGS=--training-only`` on two machines of
this project: a pix2pix_ngf training step (batch 4 of 256²) took 0.93 s in bf16 against 1.5–1.9 s in fp32 on a
CPU with AMX, but on an AVX2-only CPU (AMD EPYC, no AVX512) bf16 is emulated and the generator's forward and
backward alone took 144 s against 4.2 s in fp32. A recipe meant to be quick must not pick the slow one.
"""

from __future__ import annotations

import torch

__all__ = ["PRECISIONS", "PRECISION_CHOICES", "native_bf16", "resolve_precision"]

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISION_CHOICES: tuple[str, ...] = ("auto", *PRECISIONS)


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 convolutions in hardware (see the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``precision`` with ``"auto"`` made concrete for ``device``: ``"bf16"`` if :func:`native_bf16`, else ``"fp32"``.

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISION_CHOICES`.
    """
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISION_CHOICES)}")
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"
