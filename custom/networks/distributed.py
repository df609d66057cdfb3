"""A network placed for training: on the run's device and, when the run is one of several processes (``torchrun`` with
a bundle's ``multi_gpu_train.json``), wrapped in ``DistributedDataParallel`` so that the processes average their
gradients. So one training config serves one process and many; checkpoints store the network without the wrapper
(:func:`custom.handlers.checkpoint.unwrap`).

Config use::

    "generator": "$custom.networks.for_training(@network_def, @device)"
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["for_training"]


def for_training(network: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """``network`` moved to ``device``; wrapped in ``DistributedDataParallel`` (one device per process on GPUs) when
    ``torch.distributed`` is initialized (the config's ``initialize`` starts it before any network is built)."""
    network = network.to(device)
    if not (dist.is_available() and dist.is_initialized()):
        return network
    device = torch.device(device)
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=[device] if device.type == "cuda" else None)
