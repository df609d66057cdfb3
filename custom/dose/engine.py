"""One treatment plan, made on the CT and recomputed on the sCT, by pyRadPlan (the matRad algorithms in Python, with
generic machine data in the package; Wieser et al., "Development of the open-source dose calculation and
optimization toolkit matRad", Med. Phys. 44, 2017): photons with its singular-value-decomposed pencil beam (6 MV
generic machine), protons with its Hong pencil beam (generic machine), both CPU-only.

The plan: coplanar fields (gantry angles in IEC: 0 enters from anterior, 90 from the patient's left), pencil beams of
``bixel_mm`` through the target, fluence optimised on the CT so that the target receives ``prescription_gy``
(squared deviation, weight 100) while the rest of the body is spared (mean dose, weight 1, and squared overdose
above half the prescription, weight 10). The sCT gets the CT's fluence unchanged: every dose difference is the sCT's.
Both images go through the same calibration (HU to relative electron density for photons, to stopping power for
protons; :mod:`custom.dose.conversion`); pyRadPlan chooses the proton energies with its own default table.

The dose is computed on a grid of ``grid_mm`` and interpolated linearly to the CT's grid. The image is handed to
pyRadPlan reoriented to its nearest patient axes (L, P, S; exact for axis-aligned grids): on an oblique grid the
gantry angles are relative to those nearest axes. pyRadPlan is the optional
extra ``dose`` (``pip install -e '.[dose]'``); without it :func:`require_engine` stops with that instruction.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from custom.dose.conversion import DensityTable
from custom.errors import InputError

__all__ = ["GANTRY_ANGLE", "DoseComparison", "plan_and_recompute", "require_engine"]

#: IEC gantry angle of a coplanar field entering from each side of a supine patient
GANTRY_ANGLE = {"A": 0.0, "L": 90.0, "P": 180.0, "R": 270.0}
MODALITIES = ("photons", "protons")


def require_engine():
    """The pyRadPlan module, or a one-line error naming the optional extra."""
    try:
        import pyRadPlan
    except ImportError:
        raise InputError(
            "photon and proton dose need pyRadPlan, the optional extra 'dose': pip install -e '.[dose]' "
            "(make install includes it); --dose False gives the WEPL range surrogate alone"
        ) from None
    return pyRadPlan


@dataclass
class DoseComparison:
    """The plan's dose on the CT and on the sCT (Gy): on the CT's grid (in its array order) and on the dose grid
    (LPS array order, voxel ``grid_spacing`` mm), with what it took."""

    ct: np.ndarray
    sct: np.ndarray
    ct_on_dose_grid: np.ndarray
    sct_on_dose_grid: np.ndarray
    grid_spacing: tuple[float, float, float]
    gantry_angles: list[float]
    bixels: int
    seconds: float


def _to_sitk(volume_lps: np.ndarray, spacing_lps: np.ndarray, dtype=np.float32):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(volume_lps.transpose(2, 1, 0), dtype=dtype))  # ITK: z, y, x
    image.SetSpacing(tuple(float(s) for s in spacing_lps))
    return image


def _from_sitk(image) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(np.float32)


def plan_and_recompute(
    ct_hu: np.ndarray,
    sct_hu: np.ndarray,
    affine: np.ndarray,
    body: np.ndarray,
    target: np.ndarray,
    modality: str,
    gantry_angles: list[float],
    calibration: DensityTable,
    prescription_gy: float = 2.0,
    grid_mm: float = 3.0,
    bixel_mm: float = 5.0,
) -> DoseComparison:
    """Plan ``modality`` on the CT (fields at ``gantry_angles``), recompute the same fluence on the sCT.

    ``ct_hu``, ``sct_hu``, ``body`` and ``target`` share one grid (``affine``); outside the body both images are
    taken as air, so the couch and the air around the head count for neither.

    Raises:
        InputError: an unknown modality, no field, a prescription or grid size that is not positive, or pyRadPlan
            missing.
    """
    if modality not in MODALITIES:
        raise InputError(f"--modality {modality!r}: expected one of {', '.join(MODALITIES)}")
    if not gantry_angles:
        raise InputError(f"{modality}: give at least one field")
    if prescription_gy <= 0 or grid_mm <= 0 or bixel_mm <= 0:
        raise InputError("the prescription, the dose grid and the pencil-beam width must be positive")
    pyRadPlan = require_engine()
    import nibabel as nib
    from pyRadPlan.optimization.objectives import MeanDose, SquaredDeviation, SquaredOverdosing

    start = time.time()
    # pyRadPlan works in the DICOM / ITK patient axes: index growing to the left, posterior, superior (LPS)
    current, patient = nib.orientations.io_orientation(affine), nib.orientations.axcodes2ornt(("L", "P", "S"))
    transform = nib.orientations.ornt_transform(current, patient)
    back = nib.orientations.ornt_transform(patient, current)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    spacing_lps = np.empty(3)
    spacing_lps[transform[:, 0].astype(int)] = spacing

    def lps(volume: np.ndarray) -> np.ndarray:
        return nib.orientations.apply_orientation(volume, transform)

    ct_image = pyRadPlan.validate_ct({"cube_hu": _to_sitk(lps(np.where(body, ct_hu, -1000.0)), spacing_lps)})
    sct_image = pyRadPlan.validate_ct({"cube_hu": _to_sitk(lps(np.where(body, sct_hu, -1000.0)), spacing_lps)})
    vois = [
        {"name": "BODY", "voi_type": "EXTERNAL", "mask": _to_sitk(lps(body & ~target), spacing_lps, np.uint8)},
        {"name": "TARGET", "voi_type": "TARGET", "mask": _to_sitk(lps(target), spacing_lps, np.uint8)},
    ]
    structures = pyRadPlan.validate_cst({"vois": [{**v, "ct_image": ct_image} for v in vois]}, ct=ct_image)
    structures.vois[0].objectives = [
        MeanDose(priority=1.0, d_ref=0.0),
        SquaredOverdosing(priority=10.0, d_max=0.5 * prescription_gy),
    ]
    structures.vois[1].objectives = [SquaredDeviation(priority=100.0, d_ref=prescription_gy)]

    if modality == "photons":
        plan = pyRadPlan.PhotonPlan(machine="Generic")
        density = calibration.red
    else:
        plan = pyRadPlan.IonPlan(radiation_mode="protons", machine="Generic")
        density = calibration.spr
    angles = [float(a) for a in gantry_angles]
    plan.prop_stf = {"gantry_angles": angles, "couch_angles": [0.0] * len(angles), "bixel_width": bixel_mm}
    plan.prop_dose_calc = {
        "dose_grid": {"resolution": {"x": grid_mm, "y": grid_mm, "z": grid_mm}},
        "hlut": np.column_stack([calibration.hu, density]),
    }
    plan.prop_opt = {"solver": "scipy"}

    # pyRadPlan divides by zero outside the beams on purpose (and says so through numpy); its nested progress bars
    # are one line on a terminal but hundreds of lines in a log file, so they only go to a terminal
    progress = contextlib.nullcontext() if sys.stderr.isatty() else contextlib.redirect_stderr(io.StringIO())
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings(), progress:
        warnings.simplefilter("ignore", RuntimeWarning)
        fields = pyRadPlan.generate_stf(ct_image, structures, plan)
        influence_ct = pyRadPlan.calc_dose_influence(ct_image, structures, fields, plan)
        fluence = pyRadPlan.fluence_optimization(ct_image, structures, fields, influence_ct, plan)
        influence_sct = pyRadPlan.calc_dose_influence(sct_image, structures, fields, plan)

    def on_ct_grid(influence) -> np.ndarray:
        dose = _from_sitk(influence.compute_result_ct_grid(fluence)["physical_dose"])
        return nib.orientations.apply_orientation(dose, back)

    grid = influence_ct.compute_result_dose_grid(fluence)["physical_dose"]
    return DoseComparison(
        ct=on_ct_grid(influence_ct),
        sct=on_ct_grid(influence_sct),
        ct_on_dose_grid=_from_sitk(grid),
        sct_on_dose_grid=_from_sitk(influence_sct.compute_result_dose_grid(fluence)["physical_dose"]),
        grid_spacing=tuple(float(s) for s in grid.GetSpacing()),
        gantry_angles=angles,
        bixels=int(fields.total_number_of_bixels),
        seconds=time.time() - start,
    )
