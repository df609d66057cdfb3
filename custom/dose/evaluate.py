"""``python -m custom dose-eval``: what an sCT changes in radiotherapy dose against its CT. A plan is made on the CT
and recomputed on the sCT (photons and protons, :mod:`custom.dose.engine`, the optional extra ``dose``) and compared
(:mod:`custom.dose.metrics`: dose MAE in the body and the target, the target's D98 / D50 / D2, gamma pass rates);
for protons also the range difference along each beam from water-equivalent path lengths (:mod:`custom.dose.wepl`, a
surrogate that needs no dose engine: ``--dose False`` gives it alone, in about a second).

Beams are named by the side of the patient they enter from: ``L`` (from the left), ``R``, ``A`` (anterior), ``P``,
and for the WEPL surrogate also ``S`` and ``I``. The default plans: photons, ``--photon_fields`` 5 coplanar fields
equally spaced from gantry 0 (anterior); protons, the lateral opposed pair ``L,R`` of a head plan (``--beams``, also
the WEPL beams). The target is a mask, or by default a sphere of radius 15 mm at the centre of the body (the body mask's
centre of mass; without a mask the CT above -500 HU), prescribed ``--prescription`` 2 Gy.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from custom.data.check import HU_MIN_AT_MOST, intensity_problem
from custom.dose.conversion import GENERIC_TABLE, DensityTable
from custom.dose.wepl import range_difference, wepl_map
from custom.errors import InputError
from custom.images import read_image

__all__ = ["BEAM_SIDES", "beam_axis", "default_target", "dose_eval", "dose_figure", "wepl_figure"]

#: the RAS axis and the direction of travel (+1 towards R / A / S) of a beam entering from each side
BEAM_SIDES = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "I": (2, 1), "S": (2, -1)}
DEFAULT_TARGET_RADIUS_MM = 15.0
logger = logging.getLogger(__name__)
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


def dose_figure(
    ct_dose: np.ndarray,
    sct_dose: np.ndarray,
    target: np.ndarray,
    affine: np.ndarray,
    path: str | Path,
    title: str = "",
) -> str:
    """Dose on CT | dose on sCT | difference (sCT - CT), axial and coronal slices through the target's centre,
    RAS-oriented, colour bars in Gy; saved atomically as a PNG."""
    import nibabel as nib

    from custom.visualize import Column, save_figure

    orientation = nib.orientations.io_orientation(affine)

    def ras(volume: np.ndarray) -> np.ndarray:
        return nib.orientations.apply_orientation(volume, orientation)

    ct_dose, sct_dose, centre = ras(ct_dose), ras(sct_dose), np.round(np.argwhere(ras(target)).mean(axis=0))
    y, z = int(centre[1]), int(centre[2])
    high = max(1e-6, float(max(ct_dose.max(), sct_dose.max())))
    limit = max(1e-6, float(np.abs(sct_dose - ct_dose).max()))
    columns = [
        Column("dose on CT", (0.0, high), "Gy", "jet"),
        Column("dose on sCT", (0.0, high), "Gy", "jet"),
        Column("sCT - CT", (-limit, limit), "Gy", "RdBu_r"),
    ]
    rows = [[d[:, :, z] for d in (ct_dose, sct_dose, sct_dose - ct_dose)]]
    rows.append([d[:, y, :] for d in (ct_dose, sct_dose, sct_dose - ct_dose)])
    return save_figure(rows, columns, path, title=title, row_labels=[f"axial z={z}", f"coronal y={y}"])


def _photon_angles(fields: int) -> list[float]:
    if fields < 1:
        raise InputError(f"--photon_fields {fields}: give at least one field")
    return [round(360.0 * i / fields, 6) for i in range(fields)]


def _proton_angles(sides: list[str]) -> list[float]:
    from custom.dose.engine import GANTRY_ANGLE

    for side in sides:
        if side not in GANTRY_ANGLE:
            raise InputError(f"beam {side!r}: proton fields are coplanar, entering from {', '.join(GANTRY_ANGLE)} "
                             "(--dose False gives the WEPL of any side)")  # fmt: skip
    return [GANTRY_ANGLE[side] for side in sides]


def _case_report(
    ct: str | Path,
    sct: str | Path,
    mask: str | Path | None,
    target: str | Path | None,
    modalities: list[str],
    settings: dict,
    calibration: DensityTable,
    out: Path | None,
) -> dict:
    """One case: read and check the images; for protons the range differences per beam; with the dose engine the
    plan on the CT recomputed on the sCT per modality; with ``out`` the files."""
    from custom.outputs import check_output_path, write_nifti
    from custom.scoring import write_json

    ct_hu, affine = _read(ct, "CT")
    problem = intensity_problem(ct_hu, "CT", hounsfield=True)
    if problem is not None:
        raise InputError(f"{ct}: {problem}")
    sct_hu, _ = _read(sct, "sCT", ct_hu.shape, affine, ct)
    if float(sct_hu.min()) > HU_MIN_AT_MOST:  # a bad sCT may lack bone, but an sCT in HU has air around the head
        raise InputError(f"{sct}: sCT values in [{sct_hu.min():.4g}, {sct_hu.max():.4g}] have no air below "
                         f"{HU_MIN_AT_MOST:g}: not Hounsfield units (8-bit or normalised sCT?)")  # fmt: skip
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
    sides = settings["beams"] if "protons" in modalities else []
    axes = {side: beam_axis(side, affine) for side in sides}
    dosed = modalities if settings["dose"] else []
    outputs = []
    if out:
        outputs = [out / "dose_eval.json", *(out / f"wepl_difference_{side}.nii.gz" for side in axes)]
        outputs += [out / "wepl_difference.png"] if axes else []
        for modality in dosed:
            outputs += [out / f"dose_{modality}_{which}.nii.gz" for which in ("ct", "sct")]
            outputs.append(out / f"dose_{modality}.png")
        for path in outputs:
            check_output_path(path, [ct, sct, mask, target])
    report = {
        "ct": str(ct),
        "sct": str(sct),
        "target": str(target) if target else f"sphere of {DEFAULT_TARGET_RADIUS_MM:g} mm at the body's centre",
        "target_voxels": int(region.sum()),
        "calibration": calibration.source,
    }
    name = Path(str(sct)).name
    if axes:
        # outside the body both images are air: the couch and the air around the head must not count as sCT errors
        ct_spr = calibration.stopping_power_ratio(np.where(body, ct_hu, -1000.0))
        sct_spr = calibration.stopping_power_ratio(np.where(body, sct_hu, -1000.0))
        report["beams"] = {side: range_difference(ct_spr, sct_spr, region, spacing, *a) for side, a in axes.items()}
        if out:
            differences = {}
            for side, axis in axes.items():
                difference = wepl_map(sct_spr, spacing, *axis) - wepl_map(ct_spr, spacing, *axis)
                differences[side] = np.where(body, difference, 0).astype(np.float32)
                write_nifti(differences[side], affine, out / f"wepl_difference_{side}.nii.gz", np.float32)
            wepl_figure(ct_hu, sct_hu, differences, region, affine, out / "wepl_difference.png", f"{name} vs its CT")
    for modality in dosed:
        from custom.dose.engine import plan_and_recompute
        from custom.dose.metrics import dose_differences

        angles = _photon_angles(settings["photon_fields"]) if modality == "photons" else _proton_angles(sides)
        doses = plan_and_recompute(ct_hu, sct_hu, affine, body, region, modality, angles, calibration,
                                   settings["prescription"], settings["dose_grid"])  # fmt: skip
        logger.info("%s: %s plan on the CT, recomputed on the sCT in %.0f s", name, modality, doses.seconds)
        report[modality] = {
            "gantry_angles": doses.gantry_angles,
            "prescription_gy": settings["prescription"],
            "dose_grid_mm": list(doses.grid_spacing),
            "pencil_beams": doses.bixels,
            "seconds": doses.seconds,
            **dose_differences(doses.ct, doses.sct, body, region, settings["prescription"], doses.ct_on_dose_grid,
                               doses.sct_on_dose_grid, doses.grid_spacing),  # fmt: skip
        }
        if out:
            for which, dose in (("ct", doses.ct), ("sct", doses.sct)):
                write_nifti(dose, affine, out / f"dose_{modality}_{which}.nii.gz", np.float32)
            dose_figure(doses.ct, doses.sct, region, affine, out / f"dose_{modality}.png", f"{name}: {modality}")
    if out:
        write_json(report, outputs[0])
    return report


def _mean_over(reports: list[dict]) -> dict:
    """The mean of every number that all ``reports`` have at the same place (nested dictionaries)."""
    first = reports[0]
    mean = {}
    for key, value in first.items():
        if isinstance(value, dict):
            mean[key] = _mean_over([r[key] for r in reports])
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            mean[key] = float(np.nanmean([r[key] for r in reports]))
    return mean


def _tables(reports: dict[str, dict]) -> str:
    """A WEPL table (protons) and a dose table, one row per case and beam or modality."""
    lines = []
    if any("beams" in r for r in reports.values()):
        lines += ["| case | beam | rays | mean dWEPL mm | max abs dWEPL mm | mean range diff mm | "
                  "max abs range diff mm |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for case, report in reports.items():
            for side, r in report.get("beams", {}).items():
                lines.append(
                    f"| {case} | {side} | {r['rays']:g} | {r['wepl_difference_mm_mean']:+.2f} | "
                    f"{r['wepl_difference_mm_max_abs']:.2f} | {r['range_difference_mm_mean']:+.2f} | "
                    f"{r['range_difference_mm_max_abs']:.2f} |"
                )
    dosed = [(case, m, r[m]) for case, r in reports.items() for m in ("photons", "protons") if m in r]
    if dosed:
        lines += ["" if lines else None, "| case | modality | dose MAE body % | dose MAE target % | dD98 % | dD50 % | "
                  "dD2 % | gamma 2%/2mm % | gamma 3%/3mm % |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for case, modality, r in dosed:
            gamma = r["gamma_pass_percent"]
            lines.append(
                f"| {case} | {modality} | {r['mae_body_percent']:.2f} | {r['mae_target_percent']:.2f} | "
                f"{r['D98']['difference_percent']:+.2f} | {r['D50']['difference_percent']:+.2f} | "
                f"{r['D2']['difference_percent']:+.2f} | {gamma['2%/2mm']:.1f} | {gamma['3%/3mm']:.1f} |"
            )
    return "\n".join(line for line in lines if line is not None)


def dose_eval(
    ct: str | None = None,
    sct: str | None = None,
    mask: str | None = None,
    target: str | None = None,
    modality: str | list | tuple = "photons,protons",
    dose: bool = True,
    beams: str | list | tuple = "L,R",
    photon_fields: int = 5,
    prescription: float = 2.0,
    dose_grid: float = 3.0,
    table: str | None = None,
    out: str | None = None,
    datalist: str | None = None,
    pred_dir: str | None = None,
    split: str = "test",
) -> str:
    """Dose differences of an sCT against its CT for a plan made on the CT (photons, protons) and, for protons, the
    range differences per beam from water-equivalent path lengths: one case (``--ct``, ``--sct``), or every case of a
    datalist split with its sCT in a predictions folder (``--datalist``, ``--pred_dir``, as ``evaluate``; each
    case's body mask from the datalist).

    Args:
        ct: the CT volume in HU (NIfTI, MHA, NRRD or a DICOM series folder).
        sct: the sCT on exactly the CT's grid, in HU.
        mask: body mask on that grid (default: the CT above -500 HU).
        target: target mask on that grid (default: a 15 mm sphere at the body's centre of mass).
        modality: ``photons``, ``protons`` or both (default ``photons,protons``).
        dose: plan and recompute the dose (needs the extra ``dose``); ``False``: the WEPL range surrogate alone.
        beams: proton fields and WEPL beams, by the side they enter from, e.g. ``L,R`` (default) or ``L,R,A,P``.
        photon_fields: number of coplanar photon fields, equally spaced from gantry 0 (default 5).
        prescription: the target's prescribed dose in Gy (default 2); dose differences are also given in % of it.
        dose_grid: dose-grid voxel size in mm (default 3).
        table: CSV ``hu,red,spr`` of the CT calibration (default: the generic table of
            :mod:`custom.dose.conversion`).
        out: folder for ``dose_eval.json``; per proton beam ``wepl_difference_<beam>.nii.gz`` (float32, mm of water,
            sCT - CT, 0 outside the body) and ``wepl_difference.png`` (CT | sCT | WEPL difference per beam); per
            modality ``dose_<modality>_ct.nii.gz`` and ``..._sct.nii.gz`` (float32, Gy, on the CT's grid) and
            ``dose_<modality>.png`` (dose on CT | on sCT | difference); in ``<out>/<case>/`` for a datalist (and
            ``<out>/dose_eval.json`` over the cases); nothing is written without it.
        datalist: a datalist JSON (its ``label`` is the CT); with ``pred_dir`` (``<case>_sct.nii.gz`` files, as
            ``infer`` writes them) and ``split``.

    Returns:
        Tables: per case and proton beam the WEPL and range differences at the target's distal edge (mm); per case
        and modality the dose MAE in the body and the target, the D98 / D50 / D2 differences (% of the
        prescription) and the gamma pass rates.

    Raises:
        InputError: a missing or unreadable file, a 4D image, NaNs, a CT that is not in HU, an sCT or mask off the
            CT's grid, an empty body or target, an unknown beam side or modality, the extra ``dose`` missing, one
            case and a datalist both given.
    """
    from custom.dose.engine import MODALITIES, require_engine
    from custom.scoring import scored_cases, write_json

    def listed(value) -> list[str]:
        return [str(v).strip() for v in (value.split(",") if isinstance(value, str) else value) if str(v).strip()]

    modalities = [m.lower() for m in listed(modality)]
    for m in modalities:
        if m not in MODALITIES:
            raise InputError(f"--modality {m!r}: expected {' and/or '.join(MODALITIES)}")
    if not modalities:
        raise InputError("--modality: give photons, protons or both")
    if not dose and "protons" not in modalities:
        raise InputError("--dose False leaves only the proton WEPL surrogate: add --modality protons")
    sides = [s.upper() for s in listed(beams)]
    if "protons" in modalities and not sides:
        raise InputError("--beams: give at least one side, e.g. L,R")
    if dose:
        require_engine()  # before any case is read: a missing extra is the first thing to say
        if not (float(prescription) > 0 and float(dose_grid) > 0):
            raise InputError(f"--prescription {prescription} and --dose_grid {dose_grid}: both must be positive")
        if "protons" in modalities:
            _proton_angles(sides)
        if "photons" in modalities:
            _photon_angles(int(photon_fields))
    settings = {"dose": bool(dose), "beams": sides, "photon_fields": int(photon_fields),
                "prescription": float(prescription), "dose_grid": float(dose_grid)}  # fmt: skip
    calibration = GENERIC_TABLE if table is None else DensityTable.from_csv(table)
    folder = Path(out) if out else None
    if datalist is None:
        if not (ct and sct):
            raise InputError("give --ct and --sct (one case), or --datalist and --pred_dir (a split)")
        report = _case_report(ct, sct, mask, target, modalities, settings, calibration, folder)
        return _tables({Path(str(sct)).name: report})
    if ct or sct or mask or target:
        raise InputError("--datalist scores a split: leave out --ct, --sct, --mask and --target")
    if not pred_dir:
        raise InputError("--datalist needs --pred_dir, the folder of the split's sCTs")
    from custom.data.datalist import read_datalist

    data = read_datalist(datalist)
    if split not in data:
        raise InputError(f"{datalist}: no split {split!r} (it has {', '.join(data)})")
    cases = {
        c.case: _case_report(c.ct, c.pred, c.mask, None, modalities, settings, calibration,
                             folder / c.case if folder else None)  # fmt: skip
        for c in scored_cases(data, split, pred_dir)
    }
    summary = _mean_over(list(cases.values()))
    if folder:
        write_json({"datalist": str(datalist), "split": split, "cases": cases, "mean over cases": summary},
                   folder / "dose_eval.json")  # fmt: skip
    return _tables({**cases, "mean": summary})
