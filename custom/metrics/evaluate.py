"""Scoring synthetic CTs against reference CTs from files: ``python -m custom evaluate``.

Single case::

    python -m custom evaluate --pred sct.nii.gz --ct ct.nii.gz --mask mask.nii.gz [--protocol synthrad2025]
        [--json metrics.json] [--region-mask cranial.nii.gz] [--range 0,255] [--bone-threshold 250]

Every case of a datalist (its ``"test"`` list, or ``"validation"`` when ``"test"`` is empty, or ``--split NAME``)::

    python -m custom evaluate --datalist datalist.json --pred-dir preds/ [--out-dir results/] [--protocol all]

In datalist mode the prediction of case ``c`` is ``<pred_dir>/<c><pred_suffix>.nii.gz`` (``.png`` for 2-D datalists,
``"eight_bit": true``, which are then scored in 8-bit mode, range (0, 255)); ``--region-mask KEY`` names a key of the
datalist items holding each case's region mask. The results go to ``<out_dir>/metrics.csv`` (one row per case) and
``<out_dir>/summary.json`` (mean, std, median and count per metric), ``out_dir`` defaulting to ``pred_dir``.

Metric names (see :mod:`custom.metrics.synthrad` for the definitions): with one protocol ``mae``, ``psnr``,
``ssim`` (synthrad2023) or ``ms_ssim`` (synthrad2025); with ``--protocol all`` the protocol metrics are prefixed by
the protocol name (``synthrad2023_mae``, ``synthrad2023_psnr``, ``synthrad2023_ssim``, ``synthrad2025_mae``,
``synthrad2025_psnr``, ``synthrad2025_ms_ssim``). ``bone_dice`` and ``local_ssim`` (only with a region mask) are
protocol independent and never prefixed. JSON files hold non-finite values (PSNR of identical images) as ``null``.
"""

from __future__ import annotations

import csv
import io
import json as _json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from custom.data.datalist import read_datalist
from custom.io import InputError, case_name, is_png, read_image, write_text
from custom.metrics.synthrad import EIGHT_BIT_RANGE, PROTOCOLS, compute_metrics, resolve_protocols

__all__ = ["evaluate_case", "evaluate_command", "evaluate_datalist", "summarize", "parse_range", "GRID_TOLERANCE_MM"]

GRID_TOLERANCE_MM = 1e-3
PathLike = str | os.PathLike


# ---------------------------------------------------------------------------------------------------------- helpers
def parse_range(value: Any) -> tuple[float, float] | None:
    """``--range`` as given by fire: ``None``, a tuple/list ``(0, 255)`` or a string ``"0,255"`` / ``"0 255"``."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.strip().strip("[]()").replace(",", " ").split()
    elif isinstance(value, (int, float)):
        parts = [value]
    else:
        parts = list(value)
    try:
        lo, hi = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise InputError(f"--range: expected two numbers lo,hi (e.g. --range 0,255), got {value!r}") from None
    if not hi > lo:
        raise InputError(f"--range: expected lo < hi, got {value!r}")
    return lo, hi


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


def _write_json(path: PathLike, data: Any) -> None:
    write_text(_json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n", path)


def _grid_difference(shape_a, affine_a, shape_b, affine_b) -> str | None:
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
    problem = _grid_difference(array.shape, affine, ct_shape, ct_affine)
    if problem is not None:
        raise InputError(f"{path}: {what} is not on the grid of the CT {ct_path}: {problem}")
    return array


# ------------------------------------------------------------------------------------------------------- one case
def evaluate_case(
    pred_path: PathLike,
    ct_path: PathLike,
    mask_path: PathLike | None = None,
    protocols: str | Sequence[str] = ("synthrad2023", "synthrad2025"),
    value_range: Sequence[float] | None = None,
    region_mask_path: PathLike | None = None,
    bone_threshold: float = 250.0,
    ndim: int | None = None,
) -> dict[str, float]:
    """Read one prediction, its CT and (optional) masks, check them, and return the metrics.

    Args:
        pred_path: synthetic CT file (any format of :func:`custom.io.read_image`).
        ct_path: reference CT file; the prediction must be on its grid (shape, affine within 1e-3 mm).
        mask_path: body mask file on the CT grid; ``None`` = the whole image.
        protocols: protocol name, sequence of names, or ``"all"``; with several protocols the metric names are
            prefixed (see :func:`custom.metrics.synthrad.compute_metrics`).
        value_range: ``(lo, hi)`` replacing the protocols' HU ranges; ``None`` for PNG inputs means 8-bit mode
            ``(0, 255)``.
        region_mask_path: optional region mask (adds ``local_ssim``).
        bone_threshold: threshold of ``bone_dice`` (image units).
        ndim: required number of spatial dimensions (2 or 3), if any.

    Raises:
        InputError: unreadable files, grid mismatch, NaN values, empty mask, image too small (message names the file).
    """
    names = resolve_protocols(protocols)
    if value_range is None and is_png(ct_path):
        value_range = EIGHT_BIT_RANGE
    ct, ct_affine = read_image(ct_path, ndim=ndim)
    pred = _read_on_grid(pred_path, ct_path, ct.shape, ct_affine, ct.ndim, "prediction")
    for array, path in ((ct, ct_path), (pred, pred_path)):
        if not np.all(np.isfinite(array)):
            raise InputError(f"{path}: image contains NaN or infinite values")
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


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """Mean, standard deviation (population, ddof=0), median and count of every numeric column of ``rows``.

    Non-finite values (PSNR = inf for a perfect prediction) are left out of the statistics; ``n`` is the number of
    finite values used. Non-numeric columns (``case``) are skipped. Statistics of a column without any finite value
    are ``None``.
    """
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                columns.append(key)
    out: dict[str, dict[str, float | int | None]] = {}
    for key in columns:
        values = np.array([float(r[key]) for r in rows if key in r], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            out[key] = {"mean": None, "std": None, "median": None, "n": 0}
        else:
            out[key] = {
                "mean": float(values.mean()),
                "std": float(values.std()),
                "median": float(np.median(values)),
                "n": int(values.size),
            }
    return out


# ------------------------------------------------------------------------------------------------------- datalist
def _resolve(path: PathLike, base: Path) -> Path:
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else base / p


def _datalist_items(datalist: PathLike, split: str | None) -> tuple[list[dict], str, dict]:
    """Items of the split to score (paths made absolute by :func:`custom.data.datalist.read_datalist`)."""
    data = read_datalist(datalist)
    if split is None:
        split = "test" if data.get("test") else "validation"
    items = data.get(split)
    if not isinstance(items, list) or not items:
        raise InputError(f"{datalist}: the {split!r} list is missing or empty")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "label" not in item:
            raise InputError(f"{datalist}: item {i} of {split!r} has no 'label' (CT) entry")
    return items, split, data


def evaluate_datalist(
    datalist: PathLike,
    pred_dir: PathLike,
    out_dir: PathLike | None = None,
    protocols: str | Sequence[str] = "synthrad2023",
    value_range: Sequence[float] | None = None,
    split: str | None = None,
    region_mask_key: str | None = None,
    bone_threshold: float = 250.0,
    pred_suffix: str = "_sct",
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score every case of a datalist split; write ``metrics.csv`` and ``summary.json`` into ``out_dir``.

    Returns ``(rows, summary)``: one dict per case (``"case"`` then the metrics) and the content of summary.json.
    """
    names = resolve_protocols(protocols)
    items, split, data = _datalist_items(datalist, split)
    base = Path(os.path.expanduser(str(datalist))).resolve().parent
    pred_dir = Path(str(pred_dir))
    out_dir = Path(str(out_dir)) if out_dir is not None else pred_dir
    eight_bit = bool(data.get("eight_bit", False))
    if value_range is None and eight_bit:
        value_range = EIGHT_BIT_RANGE
    cases = []
    for item in items:
        ct_path = Path(item["label"])
        case = str(item.get("case") or case_name(ct_path))
        ext = ".png" if eight_bit or is_png(ct_path) else ".nii.gz"
        pred_path = pred_dir / f"{case}{pred_suffix}{ext}"
        if not pred_path.is_file():
            raise InputError(f"{pred_path}: prediction of case {case!r} not found")
        mask_path = Path(item["mask"]) if item.get("mask") else None
        region_path = None
        if region_mask_key is not None:
            if not item.get(region_mask_key):
                raise InputError(f"{datalist}: case {case!r} has no {region_mask_key!r} entry (region mask)")
            region_path = _resolve(item[region_mask_key], base)
        cases.append((case, pred_path, ct_path, mask_path, region_path))
    rows: list[dict[str, Any]] = []
    for case, pred_path, ct_path, mask_path, region_path in cases:
        metrics = evaluate_case(
            pred_path,
            ct_path,
            mask_path,
            protocols=names,
            value_range=value_range,
            region_mask_path=region_path,
            bone_threshold=bone_threshold,
            ndim=2 if eight_bit else None,
        )
        rows.append({"case": case, **metrics})
    columns = list(rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(float(v)) if k != "case" else v) for k, v in row.items()})
    summary = {
        "datalist": str(Path(str(datalist)).resolve()),
        "split": split,
        "protocols": list(names),
        "value_range": list(value_range) if value_range is not None else None,
        "n": len(rows),
        "metrics": summarize(rows),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(buffer.getvalue(), out_dir / "metrics.csv")
    _write_json(out_dir / "summary.json", summary)
    return rows, summary


# ------------------------------------------------------------------------------------------------------------ CLI
def evaluate_command(
    *extra: Any,
    pred: str | None = None,
    ct: str | None = None,
    mask: str | None = None,
    protocol: str = "synthrad2023",
    json: str | None = None,
    datalist: str | None = None,
    pred_dir: str | None = None,
    out_dir: str | None = None,
    range: Any = None,
    region_mask: str | None = None,
    bone_threshold: float = 250.0,
    pred_suffix: str = "_sct",
    split: str | None = None,
) -> int:
    """Score synthetic CTs with the SynthRAD metrics (one case, or every case of a datalist).

    Args:
        extra: nothing, except the second value of ``--range lo hi`` (see below).
        pred: synthetic CT file (single-case mode).
        ct: reference CT file (single-case mode); pred must be on its grid.
        mask: body mask file (single-case mode); default: the whole image.
        protocol: synthrad2023 (MAE, PSNR, SSIM), synthrad2025 (MAE, PSNR, MS-SSIM) or all (both, prefixed names).
        json: single-case mode: write the metrics to this JSON file.
        datalist: datalist JSON (datalist mode); scores its "test" list ("validation" if "test" is empty).
        pred_dir: datalist mode: folder of the predictions <case><pred_suffix>.nii.gz (.png for 8-bit datalists).
        out_dir: datalist mode: where metrics.csv and summary.json go (default: pred_dir).
        range: value range lo,hi replacing the HU ranges, e.g. 0,255 (automatic for PNG / 8-bit datalists).
        region_mask: single case: region mask file; datalist mode: key of the items holding it. Adds local_ssim.
        bone_threshold: threshold of bone_dice, image units (HU).
        pred_suffix: datalist mode: suffix of the prediction files after the case name.
        split: datalist mode: the list to score instead of test/validation.

    Returns:
        0 (exit code).

    All arguments are flags (keyword-only). ``--range 0 255`` reaches this function as ``range=0`` plus an extra
    positional ``255`` (fire's parsing), which is accepted; ``--range 0,255`` arrives as a tuple.
    """
    if extra:
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (range, *extra))
        if len(extra) == 1 and numbers:
            range = (range, extra[0])
        else:
            raise InputError(
                f"evaluate: unexpected argument(s) {' '.join(map(str, extra))} (use flags: --pred, --ct, --mask, ...)"
            )
    names = resolve_protocols(_checked_protocol(protocol))
    value_range = parse_range(range)
    if datalist is not None:
        if pred is not None or ct is not None:
            raise InputError("evaluate: give either --pred/--ct/--mask or --datalist/--pred-dir, not both")
        if pred_dir is None:
            raise InputError(f"{datalist}: --pred-dir (folder of the predictions) is required with --datalist")
        _, summary = evaluate_datalist(
            datalist,
            pred_dir,
            out_dir,
            protocols=names,
            value_range=value_range,
            split=None if split is None else str(split),
            region_mask_key=None if region_mask is None else str(region_mask),
            bone_threshold=float(bone_threshold),
            pred_suffix=str(pred_suffix),
        )
        out = Path(str(out_dir if out_dir is not None else pred_dir))
        print(f"{summary['n']} cases of '{summary['split']}' scored ({', '.join(names)})")
        for key, stats in summary["metrics"].items():
            if stats["n"]:
                print(f"{key}: mean {stats['mean']:.4f}  std {stats['std']:.4f}  median {stats['median']:.4f}")
            else:
                print(f"{key}: no finite value")
        print(f"wrote {out / 'metrics.csv'} and {out / 'summary.json'}")
        return 0
    if pred is None or ct is None:
        raise InputError(
            "evaluate: give --pred SCT --ct CT [--mask MASK] for one case, or --datalist FILE --pred-dir DIR"
        )
    metrics = evaluate_case(
        str(pred),
        str(ct),
        None if mask is None else str(mask),
        protocols=names,
        value_range=value_range,
        region_mask_path=None if region_mask is None else str(region_mask),
        bone_threshold=float(bone_threshold),
    )
    for key, value in metrics.items():
        print(f"{key}: {value:.6f}")
    if json is not None:
        _write_json(str(json), metrics)
        print(f"wrote {json}")
    return 0


def _checked_protocol(protocol: Any) -> str:
    if protocol != "all" and protocol not in PROTOCOLS:
        raise InputError(f"--protocol: unknown protocol {protocol!r}, expected one of {sorted(PROTOCOLS)} or 'all'")
    return protocol
