"""A network placed for training: on the run's device and, when the run is one of several processes (``torchrun`` with
a bundle's ``multi_gpu_train.json``), wrapped in ``DistributedDataParallel`` so that the processes average their
gradients. So one training config serves one process and many; checkpoints store the network without the wrapper
(:func:`custom.handlers.checkpoint.unwrap`).

Exact changes make the training step faster on a CPU (``channels_last``, the 2D bundles' default; measured in
``make bench ARGS=--training-only``, about 1.3-2.0x the plain eager bf16 step there): the channels-last memory layout
(NHWC / NDHWC) for parameters and inputs (:mod:`custom.networks.layout`), with every per-sample instance norm computed
by :class:`~custom.networks.channels_last_norm.ChannelsLastInstanceNorm` (the same formula and parameters, without
the copies back to NCHW and, under bf16 autocast, in bf16); and, always, MONAI's ``BasicUNet`` decoder without its
zero-width pads.

Config use::

    "generator": "$custom.networks.for_training(@network_def, @device, channels_last=@channels_last)"
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from custom.config_keys import flag
from custom.networks.channels_last_norm import use_channels_last_instance_norm
from custom.networks.layout import (
    channels_last_inputs,
    channels_last_parameters,
    channels_last_upsample_gradients,
    pad_in_input_dtype,
    skip_zero_width_pads,
)

__all__ = ["for_training"]


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
    skip_zero_width_pads(network)
    network = network.to(device)
    if channels_last:
        use_channels_last_instance_norm(network)
        network.register_forward_pre_hook(channels_last_inputs)
        channels_last_parameters(network)
        channels_last_upsample_gradients(network)
        pad_in_input_dtype(network)
    if not (dist.is_available() and dist.is_initialized()):
        return network
    device = torch.device(device)
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=[device] if device.type == "cuda" else None)
