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

:func:`lidc_items` reads the tree and reports every problem at once (one :class:`~custom.errors.InputError`, one line
per file): a slice without its mask or a mask without its slice, a mask of the wrong kind for its folder, a mask of
another size than its slice, mask values other than 0/1, an empty mask, unreadable files, a patient in both
``train/`` and ``test/`` (leakage), unknown names. Items: ``{"image": mask, "label": slice, "case": mask file name
without .npy, "subject": ID, "group": "with_nodules" | "clean", "folder": "train" | "test"}`` (``custom.tools.layouts``
makes ``test/`` the test split and draws validation patients from ``train/``).

The mask rules (:func:`custom.data.lidc.mask_problem`) and the nodule region scored in evaluation are
:mod:`custom.data.lidc`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from custom.data.lidc import GROUPS, mask_problem
from custom.errors import InputError

__all__ = ["LIDC_LAYOUT", "lidc_items"]

LIDC_LAYOUT = "lidc_mask2ct"
SPLIT_FOLDERS = ("train", "test")
_NAME = re.compile(r"^(?P<id>.+?)_(?P<kind>slice|combined_mask|lung_mask)_(?P<k>\d+)\.(?P<ext>png|npy)$")
_MAX_LINES = 25

Problem = tuple[str, str]


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


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
