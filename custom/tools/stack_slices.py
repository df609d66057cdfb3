"""Stack 8-bit 2D slice pairs into 3D volumes, and slice 3D synthetic CTs back into PNGs named like the inputs.

Some 2D datasets are consecutive axial slices of each subject (AANLIB: ``<subject><slice:03d>.png``), so each subject
stacks into a coarse co-registered head volume that 3D and 2.5D models can learn from. Command line::

    python -m custom stack-slices --root DIR --out DIR [--spacing 1,1,5] [--gaps split|refuse] [--min-slices 8]
    python -m custom datalist --root OUT --layout stacked2d --out datalist.json --val-subjects 20 --test-subjects 28
    python -m custom unstack-slices --pred SCT_DIR --stack OUT --out PNG_DIR

Input: the ``paired2d`` layout (``<root>/MRI/<name>.png`` and ``<root>/CT/<name>.png``) with ``<root>/manifest.csv``
(columns ``file``, ``subject``, ``slice``: the slice's position along the subject's axis, an integer).

Output (the SynthRAD layout, so every 3D tool reads it): ``<out>/<case>/mr.nii.gz``, ``ct.nii.gz`` (uint8 grey
levels, as in the PNGs) and ``mask.nii.gz`` (uint8 0/1), and ``<out>/stack.json``, which lists for every case its
subject and its slice files in order (data, read as plain JSON). The voxel array is ``[x, y, z]`` with ``x``, ``y``
the PNG's columns and rows as MONAI's PNG reader gives them and ``z`` the slice order; the affine is
``diag(spacing)``. ``--spacing`` is stated, not measured: AANLIB records no spacing, and 1 x 1 x 5 mm is nominal.

Body mask, per slice, as the 8-bit scoring protocol defines the body (``../shared/tools/eval2d.py``): the largest
connected component of ``fill_holes(closing((CT > 10) | (MR > 10), 5 x 5))``.

Gaps: slices are consecutive when their numbers differ by 1. A subject with missing slices (AANLIB subject 32 lacks
slices 4 and 5) is either **split** (default) into runs of consecutive slices, each run a case named
``<subject>_z<first>-<last>`` when the subject has several, runs shorter than ``--min-slices`` dropped and listed in
``stack.json``; or **refused** (``--gaps refuse``, an error naming the subject and the missing slices). Slices are
never interpolated: a synthetic slice would be scored as if it were real.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from custom.errors import InputError
from custom.images import case_name, read_image
from custom.outputs import check_output_path, write_nifti, write_png, write_text

__all__ = ["STACK_FILE", "GAP_RULES", "read_stack", "stack_slices", "unstack_slices", "slice_body_mask"]

STACK_FILE = "stack.json"
GAP_RULES = ("split", "refuse")
_BODY_THRESHOLD = 10  # grey levels, as eval2d.py
_CLOSING = np.ones((5, 5), dtype=bool)


def slice_body_mask(mr: np.ndarray, ct: np.ndarray) -> np.ndarray:
    """Body mask (uint8 0/1) of one 2D slice pair: largest component of ``fill_holes(closing((CT > 10) | (MR > 10)))``
    (closing with a 5 x 5 square)."""
    body = ndimage.binary_closing((ct > _BODY_THRESHOLD) | (mr > _BODY_THRESHOLD), structure=_CLOSING)
    body = ndimage.binary_fill_holes(body)
    labels, count = ndimage.label(body)  # 4-connected, as eval2d.py
    if count > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        body = labels == int(np.argmax(sizes))
    return body.astype(np.uint8)


def _parse_spacing(spacing: Any) -> tuple[float, float, float]:
    parts = spacing.replace(",", " ").split() if isinstance(spacing, str) else list(spacing)
    try:
        values = tuple(float(v) for v in parts)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(0 < v < float("inf") for v in values):
        raise InputError(f"--spacing: expected three positive numbers in mm (e.g. 1,1,5), got {spacing!r}")
    return values  # type: ignore[return-value]


def _read_slices(manifest: Path) -> dict[str, list[tuple[int, str]]]:
    """``subject -> [(slice number, file name), ...]`` sorted by slice number, from the manifest."""
    if not manifest.is_file():
        raise InputError(f"{manifest}: manifest not found (columns file, subject, slice)")
    subjects: dict[str, list[tuple[int, str]]] = defaultdict(list)
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"file", "subject", "slice"} - {(n or "").strip().lower() for n in reader.fieldnames or []}
        if missing:
            raise InputError(f"{manifest}: the manifest needs the column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            try:
                number = int(row["slice"])
            except ValueError:
                raise InputError(f"{manifest}: line {line}: slice {row['slice']!r} is not an integer") from None
            subjects[row["subject"]].append((number, row["file"]))
    for subject, slices in subjects.items():
        numbers = [n for n, _ in slices]
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        if repeated:
            raise InputError(f"{manifest}: subject {subject} has slice number(s) {repeated} more than once")
        slices.sort()
    return subjects


def _runs(slices: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Runs of consecutive slice numbers."""
    runs: list[list[tuple[int, str]]] = []
    for number, name in slices:
        if runs and number == runs[-1][-1][0] + 1:
            runs[-1].append((number, name))
        else:
            runs.append([(number, name)])
    return runs


def stack_slices(
    root: str, out: str, spacing: Any = "1,1,5", gaps: str = "split", min_slices: int = 8, manifest: str | None = None
) -> str:
    """Stack every subject's slice pairs under ``root`` into volumes under ``out`` (see the module docstring).

    Args:
        root: the paired2d folder (``MRI/``, ``CT/``, ``manifest.csv``).
        out: output folder (created; never inside ``root``'s image folders).
        spacing: voxel spacing x, y, z in mm, stated (``"1,1,5"`` or a sequence).
        gaps: ``"split"`` (runs of consecutive slices become cases) or ``"refuse"``.
        min_slices: split runs shorter than this are dropped (listed in ``stack.json``).
        manifest: CSV with ``file``, ``subject``, ``slice`` (default ``<root>/manifest.csv``).

    Returns:
        A one-line summary.

    Raises:
        InputError: missing folders or slices, a manifest without slice numbers, MR and CT of different sizes,
            slices of one subject of different sizes, a gap with ``gaps="refuse"``, bad arguments.
    """
    root_path = Path(os.path.expanduser(str(root)))
    mr_dir = next((root_path / n for n in ("MRI", "MR") if (root_path / n).is_dir()), None)
    if mr_dir is None or not (root_path / "CT").is_dir():
        raise InputError(f"{root}: expected the folders MRI/ (or MR/) and CT/ of 8-bit PNG slice pairs")
    if gaps not in GAP_RULES:
        raise InputError(f"--gaps: expected one of {', '.join(GAP_RULES)}, got {gaps!r}")
    if isinstance(min_slices, bool) or not isinstance(min_slices, int) or min_slices < 1:
        raise InputError(f"--min-slices: expected an integer >= 1, got {min_slices!r}")
    sx, sy, sz = _parse_spacing(spacing)
    subjects = _read_slices(Path(manifest) if manifest else root_path / "manifest.csv")
    out_path = Path(os.path.expanduser(str(out)))
    check_output_path(str(out_path / STACK_FILE), [str(mr_dir), str(root_path / "CT")], "stack folder")

    cases, dropped = [], []
    for subject in sorted(subjects, key=lambda s: (len(s), s)):
        runs = _runs(subjects[subject])
        if len(runs) > 1 and gaps == "refuse":
            have = {n for n, _ in subjects[subject]}
            lacking = [n for n in range(min(have), max(have) + 1) if n not in have]
            raise InputError(f"subject {subject}: slice(s) {lacking} missing (--gaps split stacks each run apart)")
        kept = [run for run in runs if len(run) >= min_slices or len(runs) == 1]
        dropped += [{"subject": subject, "slices": [n for _, n in run]} for run in runs if run not in kept]
        for run in kept:
            name = subject if len(kept) == 1 else f"{subject}_z{run[0][0]:03d}-{run[-1][0]:03d}"
            cases.append({"case": name, "subject": subject, "slices": [n for _, n in run]})

    for case in cases:
        mr, ct = [], []
        for name in case["slices"]:
            mr_slice, _ = read_image(mr_dir / name, ndim=2)
            ct_slice, _ = read_image(root_path / "CT" / name, ndim=2)
            if mr_slice.shape != ct_slice.shape:
                raise InputError(f"{root_path / 'CT' / name}: shape {ct_slice.shape}, its MR {mr_slice.shape}")
            if mr and mr_slice.shape != mr[0].shape:
                raise InputError(
                    f"{mr_dir / name}: shape {mr_slice.shape}, other slices of subject {case['subject']} {mr[0].shape}"
                )
            mr.append(mr_slice)
            ct.append(ct_slice)
        mr_vol, ct_vol = np.stack(mr, axis=-1), np.stack(ct, axis=-1)
        mask = np.stack([slice_body_mask(m, c) for m, c in zip(mr, ct)], axis=-1)
        affine = np.diag([sx, sy, sz, 1.0])
        folder = out_path / case["case"]
        for array, file in ((mr_vol, "mr"), (ct_vol, "ct"), (mask, "mask")):
            write_nifti(array, affine, folder / f"{file}.nii.gz", dtype=np.uint8)
    record = {"spacing_mm": [sx, sy, sz], "spacing_stated": True, "gaps": gaps, "min_slices": min_slices,
              "root": str(root_path.resolve()), "cases": cases, "dropped": dropped}  # fmt: skip
    write_text(json.dumps(record, indent=1) + "\n", out_path / STACK_FILE)
    n_slices = sum(len(c["slices"]) for c in cases)
    note = f"; dropped {sum(len(d['slices']) for d in dropped)} slice(s) in runs < {min_slices}" if dropped else ""
    return f"{out_path}: {len(cases)} volumes of {n_slices} slices from {len(subjects)} subjects{note}"


def read_stack(stack: str | os.PathLike) -> dict:
    """The ``stack.json`` of a stack folder (or the file itself), checked: ``cases`` with ``case``, ``subject`` and
    ``slices`` (file names)."""
    path = Path(stack)
    path = path / STACK_FILE if path.is_dir() else path
    if not path.is_file():
        raise InputError(f"{path}: not found (made by python -m custom stack-slices)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        cases = record["cases"]
        ok = isinstance(cases, list) and all(
            isinstance(c, dict) and isinstance(c.get("case"), str) and isinstance(c.get("subject"), str)
            and isinstance(c.get("slices"), list) and all(isinstance(s, str) for s in c["slices"])
            for c in cases
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: unreadable stack record ({e})") from None
    if not ok:
        raise InputError(f"{path}: 'cases' must be a list of {{case, subject, slices}}")
    return record


def unstack_slices(pred: str, stack: str, out: str, postfix: str = "_sct", cases: Any = None) -> str:
    """Write every slice of the synthetic CT volumes ``<pred>/<case>_sct.nii.gz`` as ``<out>/<stem><postfix>.png``,
    named after the slice file it was stacked from (``2004.png`` -> ``2004_sct.png``), rounded and clipped to 0-255,
    so 2D scoring (``eval2d.py --pred-pattern "{stem}_sct.png"``) reads them.

    Args:
        cases: only these cases of the stack record (e.g. ``28`` or ``20,28``: the split that was inferred); default
            all of them.

    Raises:
        InputError: a missing sCT, an unknown case, or an sCT whose number of slices is not its case's.
    """
    record = read_stack(stack)
    chosen = record["cases"]
    if cases is not None:
        wanted = [str(c) for c in cases] if isinstance(cases, (list, tuple)) else str(cases).split(",")
        known = {case["case"] for case in record["cases"]}
        unknown = [c for c in wanted if c not in known]
        if unknown:
            raise InputError(f"{stack}: no case {', '.join(unknown)} (cases: {', '.join(sorted(known))})")
        chosen = [case for case in record["cases"] if case["case"] in wanted]
    written = 0
    for case in chosen:
        path = Path(pred) / f"{case['case']}_sct.nii.gz"
        volume, _ = read_image(path, ndim=3)
        if volume.shape[-1] != len(case["slices"]):
            raise InputError(f"{path}: {volume.shape[-1]} slices, its case {case['case']} has {len(case['slices'])}")
        for k, name in enumerate(case["slices"]):
            target = Path(out) / f"{case_name(name)}{postfix}.png"
            check_output_path(str(target), [str(path)], "slice")
            write_png(volume[..., k], target)
            written += 1
    return f"{out}: {written} slices of {len(chosen)} volumes"
