"""Unpaired (CycleGAN) training data: MR and CT of different patients, the CT re-drawn against the MR every epoch.

From a datalist (:mod:`custom.data.datalist`):

- :func:`unpaired_items`: the MR items and the CT items of a split. An ``unpaired`` datalist gives its
  ``<split>_mr`` and ``<split>_ct`` lists; a paired one is used as if unpaired: the MR side of its ``<split>`` items
  (``image`` and ``mask``) and, separately, their CT side (``label``).
- :func:`paired_items`: cases whose MR and CT are both known, for validation and evaluation: a paired datalist's
  ``<split>`` list, or, for an ``unpaired`` datalist, the ``<split>_mr`` and ``<split>_ct`` items of the same case
  (e.g. one subject scanned with both, named with ``--val-subjects`` so that both scans go to validation).

For training, the two sides are two MONAI datasets (each with its own transforms and cache) joined by
:class:`UnpairedDataset`; :class:`UnpairedSampler` draws which CT goes with which MR, anew at every epoch (every
``__iter__``, i.e. every time the DataLoader starts an epoch, in the main process, so any ``num_workers`` works).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ignite.distributed as idist
import torch
from torch.utils.data import Dataset, Sampler

from custom.data.datalist import read_datalist
from custom.errors import InputError

__all__ = ["UnpairedDataset", "UnpairedSampler", "paired_items", "unpaired_items"]

MR_KEYS = ("image", "mask")
CT_KEYS = ("label",)
META_KEYS = ("case", "subject")


def _where(data: Mapping) -> str:
    return getattr(data, "path", None) or "datalist"


def _side(items: Sequence[Mapping], keys: Sequence[str]) -> list[dict]:
    return [{k: item[k] for k in (*keys, *META_KEYS) if k in item} for item in items]


def unpaired_items(datalist: str | dict, split: str = "training") -> tuple[list[dict], list[dict]]:
    """``(MR items, CT items)`` of ``split`` (see the module docstring): MR items ``{"image", ["mask"], "case",
    "subject"}``, CT items ``{"label", "case", "subject"}``.

    Raises:
        InputError: no such split, or one side has no items.
    """
    data = read_datalist(datalist)
    if f"{split}_mr" in data or f"{split}_ct" in data:
        mr, ct = _side(data.get(f"{split}_mr", []), MR_KEYS), _side(data.get(f"{split}_ct", []), CT_KEYS)
    elif split in data:
        mr, ct = _side(data[split], MR_KEYS), _side(data[split], CT_KEYS)
    else:
        raise InputError(f"{_where(data)}: no {split!r} list, nor {split}_mr and {split}_ct lists (unpaired layout)")
    for name, items, key in (("MR", mr, "image"), ("CT", ct, "label")):
        if not any(key in item for item in items):
            raise InputError(f"{_where(data)}: no {name} images ({key!r}) in the {split!r} data")
    return mr, ct


def paired_items(datalist: str | dict, split: str = "validation") -> list[dict]:
    """Cases of ``split`` with both an MR and its CT (see the module docstring), ``{"image", "label", ["mask"],
    "case", "subject"}``.

    Raises:
        InputError: no such cases; the message says how to provide some.
    """
    data = read_datalist(datalist)
    items = [item for item in data.get(split, []) if "image" in item and "label" in item]
    if not items:
        cts = {item.get("case"): item for item in data.get(f"{split}_ct", [])}
        for mr in data.get(f"{split}_mr", []):
            ct = cts.get(mr.get("case"))
            if ct is not None:
                items.append({**_side([mr], MR_KEYS)[0], "label": ct["label"]})
    if not items:
        raise InputError(
            f"{_where(data)}: no {split} case with both an MR and its CT (unpaired training still validates on "
            f"pairs): give a paired datalist (--val_datalist), or put one subject's MR and CT in MR/ and CT/ under "
            f"the same name and make it a validation subject (--val-subjects)"
        )
    return items


def _as_list(sample: Any) -> list[dict]:
    return [sample] if isinstance(sample, Mapping) else list(sample)


class UnpairedDataset(Dataset):
    """An MR dataset and a CT dataset read as one: ``dataset[(i, j)]`` is MR item ``i`` merged with CT item ``j``.

    Each side may return a dict or a list of dicts (several slices per volume, e.g. MONAI's
    ``RandCropByPosNegLabeld`` with ``num_samples``); lists are merged element-wise and must have the same length.
    A CT key that the MR item also has (``case``, ``subject``) is renamed ``ct_<key>``. Only pairs of indices are
    accepted: :class:`UnpairedSampler` draws them (an integer index would fix the pairing, and a paired datalist's MR
    ``k`` would always meet its own CT ``k``).

    Args:
        mr: dataset of MR items (``image``, ``mask``).
        ct: dataset of CT items (``label``).
    """

    def __init__(self, mr: Dataset, ct: Dataset) -> None:
        if len(mr) == 0 or len(ct) == 0:
            raise ValueError(f"UnpairedDataset: needs MR and CT items, got {len(mr)} MR and {len(ct)} CT.")
        self.mr, self.ct = mr, ct

    def __len__(self) -> int:
        """One epoch covers the larger side once."""
        return max(len(self.mr), len(self.ct))

    def __getitem__(self, index: tuple[int, int]) -> dict | list[dict]:
        if not isinstance(index, tuple) or len(index) != 2:
            raise TypeError(
                f"UnpairedDataset: index must be a pair (MR index, CT index), got {index!r}; load it with "
                "sampler=custom.data.unpaired.UnpairedSampler(dataset), which re-draws the pairs every epoch."
            )
        i, j = index
        mr, ct = self.mr[i], self.ct[j]
        mr_list, ct_list = _as_list(mr), _as_list(ct)
        if len(mr_list) != len(ct_list):
            raise ValueError(
                f"UnpairedDataset: MR item {i} gives {len(mr_list)} samples, CT item {j} gives {len(ct_list)}: "
                "draw the same number of slices per volume on both sides."
            )
        merged = []
        for a, b in zip(mr_list, ct_list):
            item = dict(a)
            item.update({(f"ct_{k}" if k in a else k): v for k, v in b.items()})
            merged.append(item)
        return merged[0] if isinstance(mr, Mapping) else merged


class UnpairedSampler(Sampler):
    """Indices ``(i, j)`` of an :class:`UnpairedDataset`: MR order and CT order drawn independently at every epoch.

    An epoch has ``len(dataset)`` pairs; each side's order is a random permutation, continued by further
    permutations when that side is the shorter one, so every MR and every CT is used at least once per epoch and
    which CT meets which MR changes from epoch to epoch.

    In a distributed run (``multi_gpu_train.json``) every process draws the same epoch (same seed) and takes every
    ``num_replicas``-th pair from its ``rank`` on, the epoch padded by its first pairs to a multiple of
    ``num_replicas``, so the processes see disjoint shares of equal length. ``num_replicas`` and ``rank`` default to
    the run's (one process: 1 and 0).

    Args:
        dataset: the :class:`UnpairedDataset` (or any object with ``mr`` and ``ct`` sized attributes).
        seed: seed of the sampler's own random generator (deterministic epochs for a seed), or None for torch's
            global generator (then give each process the same global seed).
        num_replicas: number of processes sharing the epoch (1: all of it); default the run's.
        rank: this process's share, in ``[0, num_replicas)``; default this process's.
    """

    def __init__(
        self, dataset: UnpairedDataset, seed: int | None = 0, num_replicas: int | None = None, rank: int | None = None
    ) -> None:
        num_replicas = idist.get_world_size() if num_replicas is None else num_replicas
        rank = idist.get_rank() if rank is None else rank
        if not 0 <= int(rank) < int(num_replicas):
            raise ValueError(f"UnpairedSampler: rank must be in [0, num_replicas={num_replicas}), got {rank}.")
        self.n_mr, self.n_ct = len(dataset.mr), len(dataset.ct)
        self.length = max(self.n_mr, self.n_ct)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.generator = None if seed is None else torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return -(-self.length // self.num_replicas)

    def _order(self, n: int) -> list[int]:
        order: list[int] = []
        while len(order) < self.length:
            order += torch.randperm(n, generator=self.generator).tolist()
        return order[: self.length]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        pairs = list(zip(self._order(self.n_mr), self._order(self.n_ct)))
        pairs += pairs[: len(self) * self.num_replicas - len(pairs)]  # equal shares for every process
        return iter(pairs[self.rank :: self.num_replicas])

    def state_dict(self) -> dict:
        """The sampler's generator state (saved in the resumable checkpoint: a resumed run draws the same pairs)."""
        return {"generator": None if self.generator is None else self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("generator") is not None and self.generator is not None:
            self.generator.set_state(state["generator"])
