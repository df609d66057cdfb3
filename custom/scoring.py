"""Scoring synthetic CT files against reference CT files: one case, or every case of a datalist split.

Reads the images (:func:`custom.images.read_image`), checks that prediction, CT and masks share one grid, and computes
the SynthRAD metrics of :mod:`custom.metrics` (array code only). In datalist mode the prediction of case ``c`` is
``<pred_dir>/<c>_sct<ext>`` (:func:`custom.outputs.sct_file_name`; ``.png`` for 8-bit datalists, which are scored in
8-bit mode, range (0, 255)); the results go to ``metrics.csv`` (one row per case) and ``summary.json`` (mean, std,
median and count per metric).

Metric names: with one protocol ``mae``, ``psnr``, ``ssim`` (synthrad2023) or ``ms_ssim`` (synthrad2025); with
several, the protocol metrics are prefixed by the protocol name (``synthrad2023_mae``, ..., ``synthrad2025_ms_ssim``).
``bone_dice`` and ``local_ssim`` (only with a region mask: a file named by the items, or a region computed from
each item and its CT by a ``region_fn``; a case without a region has no ``local_ssim``, an empty cell in
``metrics.csv``) are protocol independent and never prefixed. JSON files
hold non-finite values (PSNR of identical images) as ``null``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from custom.data.check import intensity_problem
from custom.data.datalist import evaluation_split, read_datalist, repeated_cases
from custom.errors import InputError
from custom.images import is_png, read_image
from custom.metrics import EIGHT_BIT_RANGE, compute_metrics, resolve_protocols, summarize
from custom.outputs import output_ext, sct_case, sct_file_name, write_text, write_texts

__all__ = [
    "ScoredCase",
    "evaluate_case",
    "evaluate_datalist",
    "grid_difference",
    "scored_cases",
    "write_json",
    "GRID_TOLERANCE_MM",
]

GRID_TOLERANCE_MM = 1e-3
PathLike = str | os.PathLike
# (datalist item, CT array) -> region mask on the CT's grid, or None when the case has no region
RegionFn = Callable[[dict, np.ndarray], np.ndarray | None]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _json_text(data: Any) -> str:
    return json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n"


def write_json(data: Any, path: PathLike) -> str:
    """Write ``data`` as indented JSON (non-finite floats as ``null``), atomically."""
    return write_text(_json_text(data), path)


def grid_difference(shape_a, affine_a, shape_b, affine_b) -> str | None:
    """Why two images are not on the same grid (None if they are): shape, or affine beyond the tolerance (mm)."""
    if tuple(shape_a) != tuple(shape_b):
        return f"shape {tuple(shape_a)} vs {tuple(shape_b)}"
    diff = float(np.max(np.abs(np.asarray(affine_a) - np.asarray(affine_b))))
    if diff > GRID_TOLERANCE_MM:
        return (
            f"affines differ by up to {diff:.4g} mm (tolerance {GRID_TOLERANCE_MM} mm); "
            f"origins {np.round(affine_a[:3, 3], 3).tolist()} vs {np.round(affine_b[:3, 3], 3).tolist()}, "
            f"voxel sizes {np.round(np.linalg.norm(affine_a[:3, :3], axis=0), 4).tolist()} vs "
            f"{np.round(np.linalg.norm(affine_b[:3, :3], axis=0), 4).tolist()}"
        )
    return None


def _read_on_grid(path: PathLike, ct_path: PathLike, ct_shape, ct_affine, ndim: int | None, what: str) -> np.ndarray:
    array, affine = read_image(path, ndim=ndim)
    problem = grid_difference(array.shape, affine, ct_shape, ct_affine)
    if problem is not None:
        raise InputError(f"{path}: {what} is not on the grid of the CT {ct_path}: {problem}")
    return array


def evaluate_case(
    pred_path: PathLike,
    ct_path: PathLike,
    mask_path: PathLike | None = None,
    protocols: str | Sequence[str] = ("synthrad2023", "synthrad2025"),
    value_range: Sequence[float] | None = None,
    region_mask_path: PathLike | None = None,
    bone_threshold: float = 250.0,
    ndim: int | None = None,
    region_of: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> dict[str, float]:
    """Read one prediction, its CT and (optional) masks, check them, and return the metrics.

    Args:
        pred_path: synthetic CT file (any format of :func:`custom.images.read_image`).
        ct_path: reference CT file; the prediction must be on its grid (shape, affine within 1e-3 mm).
        mask_path: body mask file on the CT grid; ``None`` = the whole image.
        protocols: protocol name, sequence of names, or ``"all"``; with several protocols the metric names are
            prefixed (see :func:`custom.metrics.compute_metrics`).
        value_range: ``(lo, hi)`` replacing the protocols' HU ranges; ``None`` for PNG inputs means 8-bit mode
            ``(0, 255)``.
        region_mask_path: optional region mask (adds ``local_ssim``).
        bone_threshold: threshold of ``bone_dice`` (image units).
        ndim: required number of spatial dimensions (2 or 3), if any.
        region_of: instead of ``region_mask_path``, a function of the CT array giving the region (or None).

    Raises:
        InputError: unreadable files, grid mismatch, NaN values, empty mask, image too small, a constant CT or (without
            ``value_range``) a CT not in Hounsfield units (:func:`custom.data.check.intensity_problem`); the message
            names the file.
    """
    names = resolve_protocols(protocols)
    if value_range is None and is_png(ct_path):
        value_range = EIGHT_BIT_RANGE
    ct, ct_affine = read_image(ct_path, ndim=ndim)
    pred = _read_on_grid(pred_path, ct_path, ct.shape, ct_affine, ct.ndim, "prediction")
    for array, path in ((ct, ct_path), (pred, pred_path)):
        if not np.all(np.isfinite(array)):
            raise InputError(f"{path}: image contains NaN or infinite values")
    problem = intensity_problem(ct, "CT", hounsfield=value_range is None)
    if problem:
        hint = " (to score it anyway, give its value range: --range lo,hi)" if "Hounsfield" in problem else ""
        raise InputError(f"{ct_path}: cannot score against this CT: {problem}{hint}")
    mask = None
    if mask_path is not None:
        mask = _read_on_grid(mask_path, ct_path, ct.shape, ct_affine, ct.ndim, "mask")
        if not np.any(mask > 0):
            raise InputError(f"{mask_path}: mask is empty (no voxel > 0)")
    region = None
    if region_mask_path is not None:
        region = _read_on_grid(region_mask_path, ct_path, ct.shape, ct_affine, ct.ndim, "region mask")
        body = np.ones(ct.shape, bool) if mask is None else mask > 0
        if not np.any((region > 0) & body):
            raise InputError(f"{region_mask_path}: region mask is empty inside the body mask")
    elif region_of is not None:
        region = region_of(ct)
    try:
        return compute_metrics(
            pred,
            ct,
            mask,
            protocol=names if len(names) > 1 else names[0],
            value_range=value_range,
            region_mask=region,
            bone_threshold=float(bone_threshold),
        )
    except ValueError as e:
        raise InputError(f"{pred_path}: cannot score against {ct_path}: {e}") from None


@dataclass(frozen=True)
class ScoredCase:
    """The files of one case of a scored split."""

    case: str
    pred: Path
    ct: Path
    mr: Path | None = None
    mask: Path | None = None
    region: Path | None = None


def scored_cases(data: dict, split: str, pred_dir: PathLike, region_mask_key: str | None = None) -> list[ScoredCase]:
    """The cases of ``data[split]`` with their prediction files in ``pred_dir``, all checked to exist.

    Raises:
        InputError: a case listed twice, an item without a CT, a missing prediction, a missing region mask entry.
    """
    where = getattr(data, "path", None) or "datalist"
    repeated = repeated_cases(data[split])
    if repeated:
        raise InputError(f"{where}: case {repeated[0]} is listed more than once in {split!r}; it would be scored twice")
    cases = []
    for i, item in enumerate(data[split]):
        if not isinstance(item, dict) or "label" not in item:
            raise InputError(f"{where}: item {i} of {split!r} has no 'label' (CT) entry")
        ct = Path(item["label"])
        case = sct_case(item)  # the name inference gave its sCT
        pred = Path(str(pred_dir)) / sct_file_name(case, output_ext(item.get("image", ct)))
        if not pred.is_file():
            raise InputError(f"{pred}: prediction of case {case!r} not found")
        region = None
        if region_mask_key is not None:
            if not item.get(region_mask_key):
                raise InputError(f"{where}: case {case!r} has no {region_mask_key!r} entry (region mask)")
            region = Path(item[region_mask_key])
            region = region if region.is_absolute() else Path(str(where)).resolve().parent / region
        mr = Path(item["image"]) if item.get("image") else None
        mask = Path(item["mask"]) if item.get("mask") else None
        cases.append(ScoredCase(case, pred, ct, mr, mask, region))
    return cases


def evaluate_datalist(
    datalist: PathLike | dict,
    pred_dir: PathLike,
    out_dir: PathLike | None = None,
    protocols: str | Sequence[str] = "synthrad2023",
    value_range: Sequence[float] | None = None,
    split: str | None = None,
    region_mask_key: str | None = None,
    bone_threshold: float = 250.0,
    region_fn: RegionFn | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score every case of a datalist split; write ``metrics.csv`` and ``summary.json`` into ``out_dir`` (both or, when
    a write fails, neither).

    Args:
        datalist: datalist JSON, or its content as read by :func:`custom.data.datalist.read_datalist`.
        pred_dir: folder of the predictions ``<case>_sct<ext>``.
        out_dir: folder of the results, default ``pred_dir``.
        protocols, value_range, bone_threshold: see :func:`evaluate_case` (8-bit datalists default to (0, 255)).
        split: the list to score; default :func:`custom.data.datalist.evaluation_split` (test, else validation).
        region_mask_key: key of the items holding a region mask (adds ``local_ssim``).
        region_fn: ``region_fn(item, ct)``, the region of a case computed from its item and CT array, or None for a
            case without one (e.g. :func:`custom.data.lidc.nodule_region`); ignored with ``region_mask_key``.

    Returns:
        ``(rows, summary)``: one dict per case (``"case"`` then the metrics) and the content of summary.json.
    """
    names = resolve_protocols(protocols)
    data = read_datalist(datalist)
    split = evaluation_split(data, split)
    eight_bit = bool(data.get("eight_bit", False))
    if value_range is None and eight_bit:
        value_range = EIGHT_BIT_RANGE
    rows: list[dict[str, Any]] = []
    for item, case in zip(data[split], scored_cases(data, split, pred_dir, region_mask_key)):
        region_of = None if region_fn is None else functools.partial(region_fn, item)
        metrics = evaluate_case(
            case.pred,
            case.ct,
            case.mask,
            protocols=names,
            value_range=value_range,
            region_mask_path=case.region,
            bone_threshold=bone_threshold,
            ndim=2 if eight_bit and is_png(case.ct) else None,
            region_of=region_of,
        )
        rows.append({"case": case.case, **metrics})
    buffer = io.StringIO()
    columns = list(dict.fromkeys(key for row in rows for key in row))  # local_ssim: only the cases with a region
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(float(v)) if k != "case" else v) for k, v in row.items()})
    path = getattr(data, "path", None)
    summary = {
        "datalist": str(Path(str(path)).resolve()) if path else None,
        "split": split,
        "protocols": list(names),
        "value_range": list(value_range) if value_range is not None else None,
        "n": len(rows),
        "metrics": summarize(rows),
    }
    out = Path(str(out_dir if out_dir is not None else pred_dir))
    write_texts({out / "metrics.csv": buffer.getvalue(), out / "summary.json": _json_text(summary)})  # both or none
    return rows, summary
