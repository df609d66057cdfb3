"""Gamma index, dose-volume points and the photon / proton plan recomputed on an sCT (custom.dose), on phantoms with
known answers. The engine tests need the optional extra ``dose`` (pyRadPlan; ``make install`` has it)."""

import json

import numpy as np
import pytest

from custom.dose.conversion import GENERIC_TABLE
from custom.dose.gamma import gamma_index, gamma_pass_rate
from custom.dose.metrics import dose_volume_point
from custom.errors import InputError


# ------------------------------------------------------------------------------------------------------------ gamma
def _ramp(spacing=(2.0, 3.0, 2.5), shape=(12, 14, 40), gradient=0.02):
    """A dose rising linearly along the last axis: 1 Gy + ``gradient`` Gy/mm."""
    x = np.arange(shape[2]) * spacing[2]
    return np.broadcast_to(1.0 + gradient * x, shape).copy()


def test_gamma_of_a_ramp_with_a_dose_offset_is_the_analytic_value():
    """For D_ref = 1 + g x and D_eval = D_ref + d: gamma = |d| / sqrt(dD^2 + g^2 dta^2) (minimised over the shift
    along the gradient); sampled at dta / 10, within 0.01."""
    spacing, g, d = (2.0, 3.0, 2.5), 0.02, 0.05
    reference = _ramp(spacing, gradient=g)
    dose_tolerance = 0.02 * reference.max()
    expected = d / np.sqrt(dose_tolerance**2 + (g * 2.0) ** 2)
    gamma = gamma_index(reference, reference + d, spacing, 2.0, 2.0, threshold_percent=0, steps_per_dta=10)
    inner = gamma[:, :, 4:-4]  # away from the ends, where the search would leave the ramp
    assert 0.5 < expected < 1.0
    assert np.all(np.abs(inner - expected) < 0.01)


def test_gamma_identical_doses_pass_everywhere_and_a_uniform_excess_fails_only_the_tight_criterion():
    reference = np.zeros((20, 20, 20))
    reference[4:16, 4:16, 4:16] = 2.0  # a flat field: no nearby point has a lower dose to excuse an excess
    assert gamma_pass_rate(reference, reference, (3.0, 3.0, 3.0), 2.0, 2.0) == 100.0
    hotter = reference * 1.025  # +2.5 % of the maximum inside the field
    assert gamma_pass_rate(reference, hotter, (3.0, 3.0, 3.0), 3.0, 3.0) == 100.0
    assert gamma_pass_rate(reference, hotter, (3.0, 3.0, 3.0), 2.0, 2.0) < 5.0


def test_gamma_a_shift_within_the_distance_passes_and_beyond_it_fails_on_a_steep_edge():
    """A field with penumbrae of about 7 %/mm shifted by 2.4 mm (1 mm voxels; the search lattice at 3 mm has steps of
    0.6 mm, so the shift is on it): every point passes 3 %/3 mm with gamma <= 2.4 / 3 (+ interpolation error); at
    2 %/1 mm the points on the edges fail."""
    x = np.arange(60, dtype=float)
    profile = 1.0 / (1 + np.exp(-(x - 20) / 3.0)) - 1.0 / (1 + np.exp(-(x - 40) / 3.0))
    reference = np.broadcast_to(profile, (4, 4, 60)).copy()
    shifted = np.broadcast_to(np.interp(x - 2.4, x, profile), (4, 4, 60)).copy()
    gamma = gamma_index(reference, shifted, (1.0, 1.0, 1.0), 3.0, 3.0)
    assert np.nanmax(gamma) <= 0.8 + 0.05
    assert gamma_pass_rate(reference, shifted, (1.0, 1.0, 1.0), 2.0, 1.0) < 90.0


@pytest.mark.parametrize(
    "args,says",
    [
        ((np.ones((3, 3)), np.ones((3, 4)), (1.0, 1.0)), "differ in shape"),
        ((np.ones((3, 3)), np.ones((3, 3)), (1.0,)), "positive voxel sizes"),
        ((np.zeros((3, 3)), np.zeros((3, 3)), (1.0, 1.0)), "zero everywhere"),
        ((np.ones((3, 3)), np.full((3, 3), np.nan), (1.0, 1.0)), "NaN"),
    ],
)
def test_gamma_bad_inputs(args, says):
    with pytest.raises(InputError, match=says):
        gamma_index(*args, 3.0, 3.0)


def test_dose_volume_point_is_the_dose_that_x_percent_receive_at_least():
    dose = np.arange(1, 101, dtype=float)  # 1..100 Gy, one voxel each
    region = np.ones(100, bool)
    assert dose_volume_point(dose, region, 98) == pytest.approx(np.percentile(dose, 2))
    assert dose_volume_point(dose, region, 50) == pytest.approx(50.5)
    assert np.mean(dose >= dose_volume_point(dose, region, 98)) == pytest.approx(0.98, abs=0.01)


# ------------------------------------------------------------------------------------------------------- the engine
def _head(spacing=3.0, n=32, depth=12):
    """A water cylinder with a 'skull' ring (1000 HU) in air, a target sphere of 12 mm at its centre."""
    x, y, z = np.meshgrid(np.arange(n), np.arange(n), np.arange(depth), indexing="ij")
    c = (n - 1) / 2
    r = np.hypot(x - c, y - c) * spacing
    body = r < n * spacing * 0.42
    ct = np.where(body, 0.0, -1000.0).astype(np.float32)
    ct[(r > n * spacing * 0.34) & body] = 1000.0
    target = np.sqrt(r**2 + ((z - (depth - 1) / 2) * spacing) ** 2) < 12.0
    return ct, body, target


def _files(tmp_path, ct, sct, affine, body=None, target=None):
    import nibabel as nib

    paths = {}
    for name, array in (("ct", ct), ("sct", sct), ("mask", body), ("target", target)):
        if array is not None:
            paths[name] = str(tmp_path / f"{name}.nii.gz")
            nib.save(nib.Nifti1Image(np.asarray(array, np.float32), affine), paths[name])
    return paths


def test_an_sct_identical_to_the_ct_gives_no_dose_difference_and_full_gamma(tmp_path, capsys, caplog):
    """Photons and protons through the command: zero dose differences, gamma 100 %, the dose files on the CT's grid
    (an LPS-stored affine), the figures, a progress line per modality."""
    import logging

    pytest.importorskip("pyRadPlan")
    caplog.set_level(logging.INFO, logger="custom")
    import nibabel as nib
    from PIL import Image

    from custom.cli import main

    ct, body, target = _head()
    affine = np.diag([-3.0, -3.0, 3.0, 1.0])
    files = _files(tmp_path, ct, ct, affine, body, target)
    out = tmp_path / "dose"
    with pytest.raises(SystemExit) as exit_:
        main(["dose-eval", "--ct", files["ct"], "--sct", files["sct"], "--mask", files["mask"], "--target",
              files["target"], "--photon_fields", "3", "--out", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert exit_.value.code == 0, text
    report = json.loads((out / "dose_eval.json").read_text())
    for modality in ("photons", "protons"):
        r = report[modality]
        assert r["mae_body_gy"] == 0 and r["mae_target_gy"] == 0
        assert all(r[d]["difference_gy"] == 0 for d in ("D98", "D50", "D2"))
        assert r["gamma_pass_percent"] == {"2%/2mm": 100.0, "3%/3mm": 100.0}
        assert r["D50"]["ct_gy"] == pytest.approx(2.0, rel=0.1)  # the plan delivers its prescription
        dose = nib.load(out / f"dose_{modality}_ct.nii.gz")
        assert dose.shape == ct.shape and dose.get_data_dtype() == np.float32
        np.testing.assert_allclose(dose.affine, affine)
        assert Image.open(out / f"dose_{modality}.png").size[0] > 300
    assert report["photons"]["gantry_angles"] == [0.0, 120.0, 240.0]
    assert report["protons"]["gantry_angles"] == [90.0, 270.0]  # L, R
    assert "| photons | 0.00 | 0.00 | +0.00 | +0.00 | +0.00 | 100.0 | 100.0 |" in text
    progress = [r.getMessage() for r in caplog.records if "recomputed on the sCT" in r.getMessage()]
    assert len(progress) == 2 and progress[0].startswith("sct.nii.gz: photons plan on the CT")


@pytest.mark.parametrize("storage", ["ras", "lps"])
def test_a_slab_upstream_shifts_the_proton_range_by_its_wepl(storage):
    """One proton field from the patient's right through water; the sCT over-states a 15 mm slab upstream of the
    target by 300 HU (SPR 1.15): the distal 80 % dose point on the central rays moves by -(SPR - 1) x 15 mm = -2.25 mm,
    as the WEPL predicts, within 0.5 mm (a sixth of the 3 mm dose grid); the opposite side is unchanged."""
    pytest.importorskip("pyRadPlan")
    from custom.dose.engine import GANTRY_ANGLE, plan_and_recompute
    from custom.dose.wepl import range_difference

    spacing, n_beam, n_side = 3.0, 40, 20
    shape = (n_beam, n_side, n_side)
    depth = np.arange(n_beam) * spacing  # mm from the right skin
    ct = np.zeros(shape, np.float32)
    body = np.ones(shape, bool)
    centre = np.array([70.0 / spacing, (n_side - 1) / 2, (n_side - 1) / 2])
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), -1)
    target = np.linalg.norm((grid - centre) * spacing, axis=-1) < 12.0
    sct = ct.copy()
    sct[(depth >= 21) & (depth < 36)] = 300.0  # voxels 7..11: 15 mm
    # LPS storage: index 0 of the first axis is the patient's right, where the beam enters; RAS storage: the left
    affine = np.diag([-spacing, -spacing, spacing, 1.0])
    if storage == "ras":
        ct, sct, body, target = ct[::-1], sct[::-1], body[::-1], target[::-1]
        affine = np.diag([spacing, spacing, spacing, 1.0])
    doses = plan_and_recompute(ct, sct, affine, body, target, "protons", [GANTRY_ANGLE["R"]], GENERIC_TABLE)

    def distal_80(dose: np.ndarray) -> np.ndarray:
        along = dose if storage == "lps" else dose[::-1]  # beam travels towards increasing index
        rays = along[:, 9:11, 9:11].reshape(n_beam, -1).T
        edges = []
        for profile in rays:
            peak = int(np.argmax(profile))
            level = 0.8 * profile.max()
            after = peak + int(np.argmax(profile[peak:] < level))
            a, b = profile[after - 1], profile[after]
            edges.append((after - 1 + (a - level) / (a - b)) * spacing)
        return np.array(edges)

    shift = distal_80(doses.sct) - distal_80(doses.ct)
    spr = float(GENERIC_TABLE.stopping_power_ratio(np.array([300.0]))[0])
    predicted = -(spr - 1.0) * 15.0
    assert predicted == pytest.approx(-2.25, abs=0.01)
    assert np.all(np.abs(shift - predicted) < 0.5), shift
    axis, direction = (0, 1) if storage == "lps" else (0, -1)
    ranges = range_difference(GENERIC_TABLE.stopping_power_ratio(ct), GENERIC_TABLE.stopping_power_ratio(sct),
                              target, (spacing,) * 3, axis, direction)  # fmt: skip
    assert ranges["range_difference_mm_mean"] == pytest.approx(predicted, abs=1e-3)


def test_a_single_photon_field_enters_from_the_side_it_is_named_after():
    """Gantry 0 (anterior) on an LPS-stored phantom and on its RAS-stored copy: the entrance (higher) dose is at the
    anterior skin in both, wherever the array puts it."""
    pytest.importorskip("pyRadPlan")
    from custom.dose.engine import plan_and_recompute

    ct, body, target = _head(n=24, depth=8)
    ct[body] = 0.0
    lps = plan_and_recompute(ct, ct, np.diag([-3.0, -3.0, 3.0, 1.0]), body, target, "photons", [0.0], GENERIC_TABLE)
    ras = plan_and_recompute(ct[::-1, ::-1], ct[::-1, ::-1], np.diag([3.0, 3.0, 3.0, 1.0]), body[::-1, ::-1],
                             target[::-1, ::-1], "photons", [0.0], GENERIC_TABLE)  # fmt: skip
    np.testing.assert_allclose(ras.ct[::-1, ::-1], lps.ct, atol=1e-4)
    column = lps.ct[12, :, 4]  # LPS storage: index grows to posterior
    inside = np.flatnonzero(body[12, :, 4])
    assert column[inside[1]] > column[inside[-2]]  # anterior skin dose above posterior


def test_without_the_dose_extra_the_command_names_it(tmp_path, capsys, monkeypatch):
    import sys

    from custom.cli import main

    ct, body, target = _head(n=16, depth=4)
    files = _files(tmp_path, ct, ct, np.diag([3.0, 3.0, 3.0, 1.0]))
    monkeypatch.setitem(sys.modules, "pyRadPlan", None)  # import pyRadPlan now raises ImportError
    with pytest.raises(SystemExit) as exit_:
        main(["dose-eval", "--ct", files["ct"], "--sct", files["sct"]])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_.value.code == 2 and len(errors) == 1 and "pip install -e '.[dose]'" in errors[0], err
    assert "--dose False" in errors[0]


def test_a_prescription_or_dose_grid_that_is_not_positive_stops_before_any_case(tmp_path, capsys):
    pytest.importorskip("pyRadPlan")
    from custom.cli import main

    missing = str(tmp_path / "not_read.nii.gz")  # never read: the settings are checked first
    for option in ("--prescription", "--dose_grid"):
        with pytest.raises(SystemExit) as exit_:
            main(["dose-eval", "--ct", missing, "--sct", missing, option, "0"])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "both must be positive" in err and "Traceback" not in err, err
