"""The sampler of a data loader that may run in one of several processes (``torchrun`` with a bundle's
``multi_gpu_train.json``).

The bundles' data loaders take their sampler from :func:`sampler_for`: in a single process a random order (training)
or the dataset's order (validation), in a distributed run MONAI's ``DistributedSampler``, which gives every process its
own share of the data. So one training config serves both, and ``multi_gpu_train.json`` only starts the process group.
"""

from __future__ import annotations

from collections.abc import Sized

import torch.distributed as dist
from monai.data import DistributedSampler
from torch.utils.data import RandomSampler, Sampler

__all__ = ["sampler_for"]


def sampler_for(dataset: Sized, shuffle: bool, even_divisible: bool | None = None) -> Sampler | None:
    """The sampler of a loader over ``dataset``.

    Args:
        dataset: the dataset of the loader.
        shuffle: a new random order every epoch (training) or the dataset's order (validation: ``None``, the loader's
            sequential default, in a single process).
        even_divisible: in a distributed run, every process gets as many items (the last ones repeated); default
            ``shuffle`` (training: yes, so that the processes step together; validation: no, so that no case is scored
            twice, and a dataset smaller than the number of processes is not split: every process sees it all).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return RandomSampler(dataset) if shuffle else None
    even = shuffle if even_divisible is None else even_divisible
    if not even and len(dataset) < dist.get_world_size():
        return None
    return DistributedSampler(dataset, even_divisible=even, shuffle=shuffle)
