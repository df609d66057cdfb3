"""The ``lidc_mask2ct`` layout: 2D lung CT slices (8-bit PNG) with their lung or lung + nodule masks (``.npy``).

Accepted exactly as follows (slices cut from LIDC-IDRI scans, for the ``mask2ct_lung`` bundle)::

    <root>/{train,test}/{with_nodules,clean}/
        <ID>_slice_<k>.png            CT slice (8-bit grey levels), the target
        <ID>_combined_mask_<k>.npy    lung + nodule mask, the input (with_nodules/ only)
        <ID>_lung_mask_<k>.npy        lung mask, the input (clean/ only)

``<ID>`` is the patient (e.g. ``LIDC-IDRI-0001``, the subject the datalist is split by) and ``<k>`` the slice number
(digits, compared as written). A mask is a 2D array of the slice's size (rows x columns) holding only 0 and 1 (any
integer, float or bool dtype), and some 1s (an empty mask has nothing to train on). ``test/`` may be missing (no test
split); every file or folder not in the scheme is a problem, except hidden ones and files directly in ``<root>``
(e.g. a README).

:func:`lidc_items` reads the tree and reports every problem at once (one :class:`~custom.io.InputError`, one line
per file): a slice without its mask or a mask without its slice, a mask of the wrong kind for its folder, a mask of
another size than its slice, mask values other than 0/1, an empty mask, unreadable files, a patient in both
``train/`` and ``test/`` (leakage), unknown names. Items: ``{"image": mask, "label": slice, "case": mask file name
without .npy, "subject": ID, "group": "with_nodules" | "clean", "folder": "train" | "test"}`` (``custom.data.layouts``
makes ``test/`` the test split and draws validation patients from ``train/``).

Evaluation of ``with_nodules`` slices adds SSIM in the nodule region (:func:`nodule_region`): a binary lung + nodule
mask does not say which of its pixels are nodule, so the region is taken from the reference slice, the pixels of the
mask at least as dense as soft tissue (grey level >= ``threshold``, default 110, about -400 HU in a [-1000, 400] HU
window): the nodules, and the vessels that a single slice cannot tell from them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from custom.io import InputError, read_image

__all__ = [
    "LIDC_LAYOUT",
    "GROUPS",
    "NODULE_THRESHOLD",
    "lidc_items",
    "mask_problem",
    "assert_valid_masks",
    "nodule_region",
]

LIDC_LAYOUT = "lidc_mask2ct"
SPLIT_FOLDERS = ("train", "test")
GROUPS = {"with_nodules": "combined_mask", "clean": "lung_mask"}  # group folder -> the mask kind it holds
NODULE_THRESHOLD = 110.0  # grey level: about -400 HU in a [-1000, 400] HU window (parenchyma ~ 25, soft tissue ~ 185)
_NAME = re.compile(r"^(?P<id>.+?)_(?P<kind>slice|combined_mask|lung_mask)_(?P<k>\d+)\.(?P<ext>png|npy)$")
_MAX_LINES = 25

Problem = tuple[str, str]


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


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


def _slice_shape(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """``((rows, columns), None)`` of an 8-bit PNG slice, or ``(None, problem)``."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height, mode = image.width, image.height, image.mode
    except Exception as e:  # not an image, truncated
        return None, f"unreadable slice ({type(e).__name__}: {e})"
    if mode not in ("L", "P", "LA", "RGB", "RGBA"):
        return None, f"slice is a {mode} image, expected 8-bit grey levels (PNG mode L)"
    return (height, width), None


def _group_items(folder: Path, group: str, split: str, problems: list[Problem]) -> list[dict]:
    """The (slice, mask) pairs of one ``<split>/<group>/`` folder; problems are appended."""
    kind = GROUPS[group]
    slices: dict[tuple[str, str], Path] = {}
    masks: dict[tuple[str, str], Path] = {}
    for path in sorted(p for p in folder.iterdir() if _visible(p)):
        match = _NAME.match(path.name) if path.is_file() else None
        if match is None:
            what = "folder" if path.is_dir() else "file"
            expected = f"<ID>_slice_<k>.png or <ID>_{kind}_<k>.npy"
            problems.append((str(path), f"unexpected {what} in {split}/{group}/ (expected {expected})"))
            continue
        key, ext = (match["id"], match["k"]), match["ext"]
        if match["kind"] == "slice":
            if ext != "png":
                problems.append((str(path), "a slice must be a .png file"))
            else:
                slices[key] = path
        elif ext != "npy":
            problems.append((str(path), "a mask must be a .npy file"))
        elif match["kind"] != kind:
            other = next(g for g, k in GROUPS.items() if k == match["kind"])
            problems.append((str(path), f"a {match['kind']} belongs in {other}/, {group}/ holds <ID>_{kind}_<k>.npy"))
        else:
            masks[key] = path
    items = []
    for key in sorted(set(slices) | set(masks)):
        patient, k = key
        if key not in masks:
            problems.append((str(slices[key]), f"slice without its mask {patient}_{kind}_{k}.npy"))
            continue
        if key not in slices:
            problems.append((str(masks[key]), f"mask without its slice {patient}_slice_{k}.png"))
            continue
        shape, problem = _slice_shape(slices[key])
        if problem is not None:
            problems.append((str(slices[key]), problem))
            continue
        problem = mask_problem(masks[key], shape, empty_ok=False)
        if problem is not None:
            problems.append((str(masks[key]), problem))
            continue
        items.append(
            {
                "image": os.path.abspath(masks[key]),
                "label": os.path.abspath(slices[key]),
                "case": masks[key].stem,
                "subject": patient,
                "group": group,
                "folder": split,
            }
        )
    return items


def _leaks(items: list[dict]) -> list[Problem]:
    """Patients with slices in both train/ and test/: one problem per patient, naming a file of each."""
    first: dict[tuple[str, str], str] = {}
    for item in items:
        first.setdefault((item["subject"], item["folder"]), item["label"])
    return [
        (
            first[(patient, "test")],
            f"patient {patient} is in test/ and in train/ ({first[(patient, 'train')]}): leakage",
        )
        for patient, folder in sorted(first)
        if folder == "test" and (patient, "train") in first
    ]


def _raise(root: Path, problems: list[Problem]) -> None:
    lines = [f"  {path}: {problem}" for path, problem in problems[:_MAX_LINES]]
    if len(problems) > _MAX_LINES:
        lines.append(f"  ... and {len(problems) - _MAX_LINES} more")
    raise InputError(f"{root}: {len(problems)} problem(s) in the {LIDC_LAYOUT} layout:\n" + "\n".join(lines))


def lidc_items(root: str | os.PathLike) -> list[dict]:
    """Read a ``lidc_mask2ct`` tree (see the module docstring): the items of every valid (slice, mask) pair.

    Raises:
        InputError: no ``train/`` folder, no slice at all, or every problem of the tree at once (one line per file).
    """
    root = Path(root)
    if not (root / "train").is_dir():
        raise InputError(
            f"{root}: no train/ folder for layout {LIDC_LAYOUT} (expected <root>/{{train,test}}/{{with_nodules,clean}}/"
            "<ID>_slice_<k>.png with <ID>_combined_mask_<k>.npy or <ID>_lung_mask_<k>.npy)"
        )
    problems: list[Problem] = []
    items: list[dict] = []
    for path in sorted(p for p in root.iterdir() if _visible(p) and p.is_dir() and p.name not in SPLIT_FOLDERS):
        problems.append((str(path), "unexpected folder (expected train/ and test/)"))
    for split in SPLIT_FOLDERS:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        for path in sorted(p for p in split_dir.iterdir() if _visible(p) and p.name not in GROUPS):
            problems.append(
                (str(path), f"unexpected {'folder' if path.is_dir() else 'file'} (expected with_nodules/ or clean/)")
            )
        groups = [g for g in GROUPS if (split_dir / g).is_dir()]
        if not groups:
            problems.append((str(split_dir), "no with_nodules/ or clean/ folder"))
        for group in groups:
            items.extend(_group_items(split_dir / group, group, split, problems))
    problems.extend(_leaks(items))
    if problems:
        _raise(root, problems)
    if not items:
        raise InputError(f"{root}: no slices found for layout {LIDC_LAYOUT} (<split>/<group>/<ID>_slice_<k>.png)")
    return items


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
        ct: the reference slice as read by :func:`custom.io.read_image` (grey levels).
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
