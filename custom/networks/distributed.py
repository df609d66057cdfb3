"""A network placed for training: on the run's device and, when the run is one of several processes (``torchrun`` with
a bundle's ``multi_gpu_train.json``), wrapped in ``DistributedDataParallel`` so that the processes average their
gradients. So one training config serves one process and many; checkpoints store the network without the wrapper
(:func:`custom.handlers.checkpoint.unwrap`).

Two exact changes make the training step faster on a CPU (``channels_last``, the 2D bundles' default; measured in
``make bench ARGS=--training-only``, 1.6-1.9x the plain eager bf16 step there):

- the channels-last memory layout (NHWC / NDHWC), in which oneDNN's convolutions run without reordering their inputs,
  with every per-sample instance norm computed by :class:`~custom.networks.channels_last_norm.ChannelsLastInstanceNorm`
  (the same formula and parameters, without the copies back to NCHW and, under bf16 autocast, in bf16), and the
  inputs given channels-last strides (a one-channel image would otherwise pass as NCHW and make the first layer's
  output, and the skip connection taken from it, NCHW);
- MONAI's ``BasicUNet`` decoder pads the upsampled map with a replicate pad of zero width when its size already matches
  the skip connection's (a copy forward and backward at every level): the pad is skipped when nothing would be padded.

Config use::

    "generator": "$custom.networks.for_training(@network_def, @device, channels_last=@channels_last)"
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from monai.networks.nets.basic_unet import UpCat

from custom.config_keys import flag
from custom.networks.channels_last_norm import CHANNELS_LAST, use_channels_last_instance_norm

__all__ = ["for_training"]


def _channels_last_inputs(_module: torch.nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: 4D/5D tensor inputs in channels-last strides. A one-channel image is both NCHW- and
    channels-last-contiguous, and PyTorch then treats it as NCHW, so the first convolution's output (and every skip
    connection taken from it) would be NCHW and converted back at each later layer; a copy with explicit channels-last
    strides (the same values, a single channel is cheap) avoids that."""
    return tuple(_with_channels_last_strides(a) if isinstance(a, torch.Tensor) else a for a in args)


def _with_channels_last_strides(x: torch.Tensor) -> torch.Tensor:
    layout = CHANNELS_LAST.get(x.dim())
    if layout is None or (x.is_contiguous(memory_format=layout) and x.stride(1) == 1):
        return x
    return torch.empty_like(x, memory_format=layout).copy_(x)


def _pad_only_when_needed(module: UpCat, args: tuple) -> None:
    """Forward pre-hook of a ``UpCat``: MONAI's replicate pad only where the 2x-upsampled map is smaller than the skip
    connection (odd sizes); otherwise its zero-width pad is a copy. If in doubt (any other size), MONAI's own check."""
    x, x_e = args[0], args[1] if len(args) > 1 else None
    if isinstance(x_e, torch.Tensor):
        module.is_pad = any(e != 2 * s for e, s in zip(x_e.shape[2:], x.shape[2:]))


def for_training(
    network: torch.nn.Module, device: torch.device | str, channels_last: bool | str = False
) -> torch.nn.Module:
    """``network`` moved to ``device``; with ``channels_last``, in that layout with channels-last instance norms (see
    the module docstring); wrapped in ``DistributedDataParallel`` (one device per process on GPUs) when
    ``torch.distributed`` is initialized (the config's ``initialize`` starts it before any network is built).

    The parameters keep their names, so checkpoints load into the plain ``network_def`` (layout is not part of a
    checkpoint's values). ``channels_last`` is a config switch: a bool, or ``"true"``/``"false"`` from a command line.
    """
    channels_last = flag(channels_last, "channels_last")
    for module in network.modules():
        if isinstance(module, UpCat) and module.is_pad:
            module.register_forward_pre_hook(_pad_only_when_needed)
    network = network.to(device)
    if channels_last:
        use_channels_last_instance_norm(network)
        network.register_forward_pre_hook(_channels_last_inputs)
        for parameter in network.parameters():
            layout = CHANNELS_LAST.get(parameter.dim())
            if layout is not None:
                parameter.data = parameter.data.contiguous(memory_format=layout)
    if not (dist.is_available() and dist.is_initialized()):
        return network
    device = torch.device(device)
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=[device] if device.type == "cuda" else None)
