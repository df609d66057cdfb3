"""The masks of the ``lidc_mask2ct`` data (lung or lung + nodule masks, ``.npy``, the ``mask2ct_lung`` bundle's input)
and the nodule region its evaluation scores.

A mask is a 2D array (rows x columns, the size of its CT slice) holding only 0 and 1 (any integer, float or bool
dtype); :func:`mask_problem` says what is wrong with one, :func:`assert_valid_masks` checks a run's inputs. The layout
itself (which files make a case) is :mod:`custom.tools.lidc_layout`.

Evaluation of ``with_nodules`` slices adds SSIM in the nodule region (:func:`nodule_region`): a binary lung + nodule
mask does not say which of its pixels are nodule, so the region is taken from the reference slice, the pixels of the
mask at least as dense as soft tissue (grey level >= ``threshold``, default 110, about -400 HU in a [-1000, 400] HU
window): the nodules, and the vessels that a single slice cannot tell from them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from custom.errors import InputError
from custom.images import read_image

__all__ = ["GROUPS", "NODULE_THRESHOLD", "mask_problem", "assert_valid_masks", "nodule_region"]

GROUPS = {"with_nodules": "combined_mask", "clean": "lung_mask"}  # group folder -> the mask kind it holds
NODULE_THRESHOLD = 110.0  # grey level: about -400 HU in a [-1000, 400] HU window (parenchyma ~ 25, soft tissue ~ 185)


def mask_problem(path: str | os.PathLike, shape: Sequence[int] | None = None, empty_ok: bool = True) -> str | None:
    """What is wrong with a mask ``.npy`` (None when nothing): unreadable, not 2D, values other than 0/1, a shape
    (rows, columns) other than ``shape``, or (``empty_ok=False``) no pixel at 1."""
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as e:  # truncated, not .npy, pickled objects
        return f"unreadable mask ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    if not isinstance(array, np.ndarray) or array.ndim != 2:
        return f"mask is {np.ndim(array)}D with shape {tuple(np.shape(array))}, expected a 2D array"
    if array.dtype.kind not in "biuf":
        return f"mask has dtype {array.dtype}, expected numbers 0 and 1"
    values = np.unique(array)
    bad = [v for v in values.tolist() if v not in (0, 1)]  # NaN is never 0 or 1
    if bad:
        shown = ", ".join(f"{v:g}" for v in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        return f"mask values must be 0 or 1, found {shown}"
    if shape is not None and tuple(array.shape) != tuple(shape):
        rows, columns = shape
        return f"mask is {array.shape[0]} x {array.shape[1]} (rows x columns), its slice is {rows} x {columns}"
    if not empty_ok and 1 not in values.tolist():
        return "empty mask (no pixel is 1): nothing to train on"
    return None


def assert_valid_masks(items: Sequence[dict], key: str = "image") -> None:
    """Raise one :class:`InputError` listing every ``items[i][key]`` that is not a 2D 0/1 mask ``.npy`` (inference
    inputs of ``mask2ct_lung``; other file types are left to the readers)."""
    problems = []
    for item in items:
        path = str(item[key])
        if path.lower().endswith(".npy"):
            problem = mask_problem(path)
            if problem is not None:
                problems.append(f"  {path}: {problem}")
    if problems:
        raise InputError(f"input masks: {len(problems)} problem(s):\n" + "\n".join(problems))


def nodule_region(item: dict, ct: np.ndarray, threshold: float = NODULE_THRESHOLD) -> np.ndarray | None:
    """The nodule region of a ``with_nodules`` item for local SSIM: ``mask > 0 & ct >= threshold`` (see the module
    docstring); None for other items or when the region is empty.

    Args:
        item: datalist item with ``image`` (the mask ``.npy``) and ``group``.
        ct: the reference slice as read by :func:`custom.images.read_image` (grey levels).
        threshold: grey level of soft tissue.

    Raises:
        InputError: the mask is unreadable or not the size of ``ct``.
    """
    if item.get("group") != "with_nodules":
        return None
    mask, _ = read_image(item["image"], ndim=2)
    if mask.shape != ct.shape:
        raise InputError(f"{item['image']}: mask shape {mask.shape} differs from its slice's {ct.shape}")
    region = (mask > 0) & (np.asarray(ct) >= float(threshold))
    return region if region.any() else None
