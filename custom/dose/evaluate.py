"""``python -m custom dose-eval``: how far an sCT moves proton ranges against its CT (the WEPL surrogate of
:mod:`custom.dose.wepl`), per beam, with a water-equivalent-path-length difference map per beam.

Beams are parallel fields along the image's axes, named by the side they enter from in patient coordinates (RAS):
``L`` (from the left), ``R``, ``A`` (anterior), ``P``, ``S``, ``I``; default ``L,R``, the lateral opposed pair of a
head plan. The target is a mask, or by default a sphere of radius 15 mm at the centre of the body (the body mask's
centre of mass; without a mask the CT above -500 HU). Photon dose, dose-volume statistics and gamma need a dose engine
and are not computed yet (``--modality photons`` says so).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from custom.data.check import intensity_problem
from custom.dose.conversion import GENERIC_TABLE, DensityTable
from custom.dose.wepl import range_difference, wepl_map
from custom.errors import InputError
from custom.images import read_image

__all__ = ["BEAM_SIDES", "beam_axis", "default_target", "dose_eval", "wepl_figure"]

#: the RAS axis and the direction of travel (+1 towards R / A / S) of a beam entering from each side
BEAM_SIDES = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "I": (2, 1), "S": (2, -1)}
DEFAULT_TARGET_RADIUS_MM = 15.0
BODY_HU = -500.0


def beam_axis(side: str, affine: np.ndarray) -> tuple[int, int]:
    """The array axis and direction (+1: entering at index 0) of a beam entering from ``side`` of the patient."""
    import nibabel as nib

    if side not in BEAM_SIDES:
        raise InputError(f"beam {side!r}: expected sides of entry among {', '.join(BEAM_SIDES)}")
    ras_axis, travel = BEAM_SIDES[side]
    orientation = nib.orientations.io_orientation(affine)  # per array axis: (RAS axis, +1 if the index grows to R/A/S)
    for axis, (to_ras, sign) in enumerate(orientation):
        if int(to_ras) == ras_axis:
            return axis, int(travel * sign)
    raise InputError(f"beam {side!r}: the image has no axis along {'RAS'[ras_axis]}")


def default_target(body: np.ndarray, spacing: np.ndarray, radius_mm: float = DEFAULT_TARGET_RADIUS_MM) -> np.ndarray:
    """A sphere of ``radius_mm`` at the body's centre of mass (inside the body only)."""
    centre = np.argwhere(body).mean(axis=0)
    axes = np.ogrid[tuple(slice(0, n) for n in body.shape)]  # broadcast, not a full coordinate grid per axis
    squared = sum(((axes[i] - centre[i]) * spacing[i]) ** 2 for i in range(body.ndim))
    return (squared <= radius_mm**2) & body


def wepl_figure(
    ct_hu: np.ndarray,
    sct_hu: np.ndarray,
    differences: dict[str, np.ndarray],
    target: np.ndarray,
    affine: np.ndarray,
    path: str | Path,
    title: str = "",
) -> str:
    """CT | sCT | WEPL difference (one row per beam), the axial slice through the target's centre, RAS-oriented
    (anterior up), with colour bars in HU and mm of water; saved atomically as a PNG."""
    import nibabel as nib

    from custom.visualize import Column, save_figure

    orientation = nib.orientations.io_orientation(affine)

    def ras(volume: np.ndarray) -> np.ndarray:
        return nib.orientations.apply_orientation(volume, orientation)

    z = int(round(np.argwhere(ras(target)).mean(axis=0)[2]))
    largest = max(float(np.abs(d).max()) for d in differences.values())
    limit = max(1.0, float(np.ceil(largest)))
    columns = [
        Column("CT", (-1000.0, 1600.0), "HU"),
        Column("sCT", (-1000.0, 1600.0), "HU"),
        Column("WEPL sCT - CT", (-limit, limit), "mm of water", "RdBu_r"),
    ]
    ct_slice, sct_slice = ras(ct_hu)[:, :, z], ras(sct_hu)[:, :, z]  # the same two panels on every row
    rows = [[ct_slice, sct_slice, ras(d)[:, :, z]] for d in differences.values()]
    labels = [f"beam {side}, z={z}" for side in differences]
    return save_figure(rows, columns, path, title=title, row_labels=labels)


def _read(path: str | Path, what: str, ct_shape=None, ct_affine=None, ct_path=None) -> tuple[np.ndarray, np.ndarray]:
    from custom.scoring import grid_difference

    array, affine = read_image(path, ndim=3)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{path}: the {what} has NaN or infinite values")
    if ct_shape is not None:
        problem = grid_difference(array.shape, affine, ct_shape, ct_affine)
        if problem is not None:
            raise InputError(f"{path}: the {what} is not on the grid of the CT {ct_path}: {problem}")
    return array, affine


def _case_report(
    ct: str | Path,
    sct: str | Path,
    mask: str | Path | None,
    target: str | Path | None,
    sides: list[str],
    calibration: DensityTable,
    out: Path | None,
) -> dict:
    """One case: read and check the images, the range differences per beam, and (with ``out``) its files."""
    from custom.outputs import check_output_path, write_nifti
    from custom.scoring import write_json

    ct_hu, affine = _read(ct, "CT")
    problem = intensity_problem(ct_hu, "CT", hounsfield=True)
    if problem is not None:
        raise InputError(f"{ct}: {problem}")
    sct_hu, _ = _read(sct, "sCT", ct_hu.shape, affine, ct)
    body = (_read(mask, "body mask", ct_hu.shape, affine, ct)[0] > 0) if mask else ct_hu > BODY_HU
    if not body.any():
        raise InputError(f"{mask or ct}: the body mask is empty")
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if target:
        region = (_read(target, "target mask", ct_hu.shape, affine, ct)[0] > 0) & body
        if not region.any():
            raise InputError(f"{target}: the target mask is empty inside the body")
    else:
        region = default_target(body, spacing)
    axes = {side: beam_axis(side, affine) for side in sides}
    maps = [out / f"wepl_difference_{side}.nii.gz" for side in axes] if out else []
    outputs = [out / "dose_eval.json", out / "dose_eval.png", *maps] if out else []
    for path in outputs:
        check_output_path(path, [ct, sct, mask, target])
    # outside the body both images are air: the couch and the air around the head must not count as sCT errors
    ct_spr = calibration.stopping_power_ratio(np.where(body, ct_hu, -1000.0))
    sct_spr = calibration.stopping_power_ratio(np.where(body, sct_hu, -1000.0))
    results, differences = {}, {}
    for side, (axis, direction) in axes.items():
        results[side] = range_difference(ct_spr, sct_spr, region, spacing, axis, direction)
        if out:
            difference = wepl_map(sct_spr, spacing, axis, direction) - wepl_map(ct_spr, spacing, axis, direction)
            differences[side] = np.where(body, difference, 0).astype(np.float32)
    for side, path in zip(differences, maps):
        write_nifti(differences[side], affine, path, np.float32)
    report = {
        "ct": str(ct),
        "sct": str(sct),
        "modality": "protons",
        "target": str(target) if target else f"sphere of {DEFAULT_TARGET_RADIUS_MM:g} mm at the body's centre",
        "target_voxels": int(region.sum()),
        "calibration": calibration.source,
        "beams": results,
    }
    if out:
        write_json(report, outputs[0])
        wepl_figure(ct_hu, sct_hu, differences, region, affine, outputs[1], title=f"{Path(str(sct)).name} vs its CT")
    return report


def _table(rows: dict[str, dict[str, dict]]) -> str:
    lines = ["| case | beam | rays | mean dWEPL mm | max abs dWEPL mm | mean range diff mm | max abs range diff mm |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for case, beams in rows.items():
        for side, r in beams.items():
            lines.append(
                f"| {case} | {side} | {r['rays']:g} | {r['wepl_difference_mm_mean']:+.2f} | "
                f"{r['wepl_difference_mm_max_abs']:.2f} | {r['range_difference_mm_mean']:+.2f} | "
                f"{r['range_difference_mm_max_abs']:.2f} |"
            )
    return "\n".join(lines)


def dose_eval(
    ct: str | None = None,
    sct: str | None = None,
    mask: str | None = None,
    target: str | None = None,
    modality: str = "protons",
    beams: str | list | tuple = "L,R",
    table: str | None = None,
    out: str | None = None,
    datalist: str | None = None,
    pred_dir: str | None = None,
    split: str = "test",
) -> str:
    """Proton range differences of an sCT against its CT, per beam, from water-equivalent path lengths: one case
    (``--ct``, ``--sct``), or every case of a datalist split with its sCT in a predictions folder (``--datalist``,
    ``--pred_dir``, as ``evaluate``; each case's body mask from the datalist).

    Args:
        ct: the CT volume in HU (NIfTI, MHA, NRRD or a DICOM series folder).
        sct: the sCT on exactly the CT's grid, in HU.
        mask: body mask on that grid (default: the CT above -500 HU).
        target: target mask on that grid (default: a 15 mm sphere at the body's centre of mass).
        modality: ``protons`` (the WEPL range surrogate); ``photons`` needs a dose engine, not built yet.
        beams: sides the beams enter from, e.g. ``L,R`` (default) or ``L,R,A,P``.
        table: CSV ``hu,red,spr`` of the CT calibration (default: the generic table of
            :mod:`custom.dose.conversion`).
        out: folder for ``dose_eval.json``, ``wepl_difference_<beam>.nii.gz`` (float32, mm of water, sCT - CT, 0
            outside the body) and ``dose_eval.png`` (CT | sCT | WEPL difference per beam, the axial slice through the
            target), in ``<out>/<case>/`` for a datalist (and ``<out>/dose_eval.json`` over the cases); nothing is
            written without it.
        datalist: a datalist JSON (its ``label`` is the CT); with ``pred_dir`` (``<case>_sct.nii.gz`` files, as
            ``infer`` writes them) and ``split``.

    Returns:
        A table, one row per case and beam: rays through the target, mean and largest |WEPL difference| and range
        difference at the target's distal edge (mm).

    Raises:
        InputError: a missing or unreadable file, a 4D image, NaNs, a CT that is not in HU, an sCT or mask off the
            CT's grid, an empty body or target, an unknown beam side or modality, one case and a datalist both given.
    """
    from custom.scoring import scored_cases, write_json

    if modality == "photons":
        raise InputError("--modality photons: photon dose needs a dose engine, which is not built yet; "
                         "--modality protons gives the WEPL range surrogate")  # fmt: skip
    if modality != "protons":
        raise InputError(f"--modality {modality!r}: expected protons (photons: not built yet)")
    sides = [s.strip().upper() for s in (beams.split(",") if isinstance(beams, str) else beams) if str(s).strip()]
    if not sides:
        raise InputError("--beams: give at least one side, e.g. L,R")
    calibration = GENERIC_TABLE if table is None else DensityTable.from_csv(table)
    folder = Path(out) if out else None
    if datalist is None:
        if not (ct and sct):
            raise InputError("give --ct and --sct (one case), or --datalist and --pred_dir (a split)")
        report = _case_report(ct, sct, mask, target, sides, calibration, folder)
        return _table({Path(str(sct)).name: report["beams"]})
    if ct or sct or mask or target:
        raise InputError("--datalist scores a split: leave out --ct, --sct, --mask and --target")
    if not pred_dir:
        raise InputError("--datalist needs --pred_dir, the folder of the split's sCTs")
    from custom.data.datalist import read_datalist

    data = read_datalist(datalist)
    if split not in data:
        raise InputError(f"{datalist}: no split {split!r} (it has {', '.join(data)})")
    cases = {
        c.case: _case_report(c.ct, c.pred, c.mask, None, sides, calibration, folder / c.case if folder else None)
        for c in scored_cases(data, split, pred_dir)
    }
    summary = {
        side: {
            key: float(np.nanmean([r["beams"][side][key] for r in cases.values()]))
            for key in next(iter(cases.values()))["beams"][side]
        }
        for side in sides
    }
    if folder:
        write_json({"datalist": str(datalist), "split": split, "cases": cases, "mean over cases": summary},
                   folder / "dose_eval.json")  # fmt: skip
    return _table({**{case: r["beams"] for case, r in cases.items()}, "mean": summary})
