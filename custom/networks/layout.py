"""Exact changes of layout and of needless copies and casts made by the training step
(:func:`~custom.networks.for_training`) and, except the two that concern training only (gradients; pads under
autocast, which inference does not use), by the inference network (:func:`~custom.networks.prepare_for_inference`):

- the channels-last memory formats (NHWC / NDHWC), in which oneDNN's CPU convolutions run without reordering;
- inputs given *explicit* channels-last strides: a one-channel image is NCHW- and channels-last-contiguous at once, and
  PyTorch then treats it as NCHW, so the first convolution's output (and every skip connection taken from it) would be
  NCHW and converted back at each later layer;
- the gradient reaching an upsampling layer whose output is concatenated (a U-Net decoder) is the concatenation's
  backward, a strided slice of a larger gradient; PyTorch's bilinear/trilinear backward then copies it to NCHW and
  runs its NCHW kernel (54 ms of the 0.49 s pix2pix_ngf bf16 step, against 4 ms channels-last), so the gradient is
  handed on channels-last (:func:`channels_last_upsample_gradients`);
- a convolution with reflect/replicate/circular padding (``padding_mode``) pads in its input's dtype: CPU autocast
  runs those pads in float32, so each one cast its bf16 input to float32 and the convolution cast the padded map back
  (and the same two casts backward: 5 % of the cyclegan_cc quick-recipe step); a pad only copies values, so it gives
  the same numbers in bf16 (:func:`pad_in_input_dtype`);
- MONAI's ``BasicUNet`` decoder (``UpCat``) pads the 2x-upsampled map with a replicate pad even when its width is zero
  (the map already matches the skip connection): a copy forward and backward at every level, skipped here.

None of them changes the arithmetic: layout is not arithmetic (a kernel may only sum in another order), a pad copies
values in any dtype, and a zero-width pad is the identity.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from monai.networks.nets.basic_unet import UpCat

__all__ = [
    "CHANNELS_LAST",
    "channels_last_parameters",
    "channels_last_upsample_gradients",
    "pad_in_input_dtype",
    "skip_zero_width_pads",
    "with_channels_last_strides",
]

# the channels-last memory format of a tensor by its number of dimensions (2D and 3D images with batch and channel)
CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def with_channels_last_strides(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x`` (cast to ``dtype`` if given) with channels-last strides if it is a 4D/5D tensor, in one copy at most.

    ``x.contiguous(memory_format=torch.channels_last)`` is a no-op on a one-channel NCHW tensor (it already counts as
    channels-last-contiguous), so the strides are set explicitly: stride 1 along the channels.
    """
    dtype = x.dtype if dtype is None else dtype
    layout = CHANNELS_LAST.get(x.dim())
    if layout is None:
        return x.to(dtype=dtype)
    if x.dtype == dtype and x.is_contiguous(memory_format=layout) and x.stride(1) == 1:
        return x
    return torch.empty_like(x, dtype=dtype, memory_format=layout).copy_(x)


def channels_last_inputs(_module: torch.nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: every 4D/5D tensor argument with channels-last strides (:func:`with_channels_last_strides`)."""
    return tuple(with_channels_last_strides(a) if isinstance(a, torch.Tensor) else a for a in args)


def channels_last_parameters(network: torch.nn.Module) -> None:
    """The 4D/5D parameters (convolution weights) of ``network`` in channels-last layout, in place."""
    for parameter in network.parameters():
        layout = CHANNELS_LAST.get(parameter.dim())
        if layout is not None:
            parameter.data = parameter.data.contiguous(memory_format=layout)


def _pad_only_when_needed(module: UpCat, args: tuple) -> None:
    """Forward pre-hook of a ``UpCat``: MONAI's replicate pad only where the 2x-upsampled map is smaller than the skip
    connection (odd sizes); otherwise its zero-width pad is a copy. If in doubt (any other size), MONAI's own check."""
    x, x_e = args[0], args[1] if len(args) > 1 else None
    if isinstance(x_e, torch.Tensor):
        module.is_pad = any(e != 2 * s for e, s in zip(x_e.shape[2:], x.shape[2:]))


def skip_zero_width_pads(network: torch.nn.Module) -> None:
    """Hook every padding ``UpCat`` of ``network`` (MONAI's ``BasicUNet`` decoder) so that it pads only when the
    upsampled map is smaller than its skip connection; its output is the same."""
    for module in network.modules():
        if isinstance(module, UpCat) and module.is_pad:
            module.register_forward_pre_hook(_pad_only_when_needed)


class _ChannelsLastGradient(torch.autograd.Function):
    """The identity, whose backward hands on the gradient in the channels-last layout (one copy if it is not)."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        layout = CHANNELS_LAST.get(grad.dim())
        return grad if layout is None else grad.contiguous(memory_format=layout)


def _channels_last_output_gradient(_module: torch.nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor:
    """Forward hook: ``output`` through :class:`_ChannelsLastGradient` when it is part of a graph."""
    if isinstance(output, torch.Tensor) and output.requires_grad:
        return _ChannelsLastGradient.apply(output)
    return output


def channels_last_upsample_gradients(network: torch.nn.Module) -> None:
    """Hook every ``torch.nn.Upsample`` of ``network`` so that the gradient of its output reaches its backward in the
    channels-last layout (see the module docstring); values are unchanged."""
    for module in network.modules():
        if isinstance(module, torch.nn.Upsample):
            module.register_forward_hook(_channels_last_output_gradient)


def _pad_then_convolve(conv: torch.nn.modules.conv._ConvNd, x: torch.Tensor, weight, bias) -> torch.Tensor:
    """``conv``'s own padded convolution with the pad outside autocast, so in ``x``'s dtype (see the module
    docstring); the convolution itself stays under autocast."""
    with torch.autocast(x.device.type, enabled=False):
        padded = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
    convolve = (F.conv1d, F.conv2d, F.conv3d)[weight.dim() - 3]
    return convolve(padded, weight, bias, conv.stride, 0, conv.dilation, conv.groups)


def pad_in_input_dtype(network: torch.nn.Module) -> None:
    """Every convolution of ``network`` with a non-zero ``padding_mode`` pads in its input's dtype under autocast
    (see the module docstring); the values are the same."""
    for module in network.modules():
        padded = isinstance(module, torch.nn.modules.conv._ConvNd) and module.padding_mode != "zeros"
        if padded and not module.transposed:
            module._conv_forward = functools.partial(_pad_then_convolve, module)
