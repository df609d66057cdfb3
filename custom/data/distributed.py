"""Samplers for a run that may be one of several processes (``torchrun`` with a bundle's ``multi_gpu_train.json``).

The bundles' data loaders take their sampler from :func:`distributed_sampler`: in a single process it is ``None`` (the
loader's own order), in a distributed run MONAI's ``DistributedSampler``, which gives every process its own share of
the data. So one training config serves both, and ``multi_gpu_train.json`` only starts the process group.
"""

from __future__ import annotations

from collections.abc import Sized

import torch.distributed as dist
from monai.data import DistributedSampler

__all__ = ["distributed_sampler"]


def distributed_sampler(dataset: Sized, shuffle: bool, even_divisible: bool | None = None) -> DistributedSampler | None:
    """MONAI's ``DistributedSampler`` over ``dataset`` when this process is one of several, else ``None``.

    Args:
        dataset: the dataset of the loader.
        shuffle: a new order every epoch (training) or the dataset's order (validation).
        even_divisible: every process gets as many items (the last ones repeated); default ``shuffle`` (training:
            yes, so that the processes step together; validation: no, so that no case is scored twice). Without it a
            dataset smaller than the number of processes is not split (``None``: every process sees it all).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return None
    even = shuffle if even_divisible is None else even_divisible
    if not even and len(dataset) < dist.get_world_size():
        return None
    return DistributedSampler(dataset, even_divisible=even, shuffle=shuffle)
