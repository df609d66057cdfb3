"""The CT calibration table and the WEPL range surrogate (custom.dose) on small phantoms with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from custom.dose import GENERIC_TABLE, DensityTable, range_difference, wepl_map
from custom.errors import InputError

SPACING = (2.0, 2.0, 3.0)


def water_phantom_with_target() -> tuple[np.ndarray, np.ndarray]:
    """A 20 x 16 x 4 water box (HU 0) with a target 6 voxels deep, at depth indices 10..15 of axis 0."""
    ct = np.zeros((20, 16, 4), dtype=np.float32)
    target = np.zeros(ct.shape, dtype=bool)
    target[10:16, 4:12, 1:3] = True
    return ct, target


def test_table_interpolates_and_clips():
    hu = np.array([-2000.0, -1000.0, 0.0, 30.0, 5000.0])
    spr = GENERIC_TABLE.stopping_power_ratio(hu)
    assert spr.dtype == np.float32
    np.testing.assert_allclose(spr, [0.001, 0.001, 1.0, 1.02, 2.5], rtol=1e-6)
    assert np.all(np.diff(GENERIC_TABLE.relative_electron_density(np.linspace(-1000, 3000, 50))) >= 0)


def test_table_from_csv_and_its_errors(tmp_path):
    good = tmp_path / "table.csv"
    good.write_text("hu,red,spr\n-1000,0.001,0.001\n0,1,1\n1000,1.6,1.5\n")
    table = DensityTable.from_csv(good)
    np.testing.assert_allclose(table.stopping_power_ratio(np.array([500.0])), [1.25])
    (tmp_path / "bad.csv").write_text("hu,red\n0,1\n")
    with pytest.raises(InputError, match="bad.csv: expected a header"):
        DensityTable.from_csv(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="strictly increasing"):
        DensityTable(hu=(0.0, 0.0), red=(1.0, 1.0), spr=(1.0, 1.0))
    with pytest.raises(InputError, match="cannot read"):
        DensityTable.from_csv(tmp_path / "missing.csv")


def test_wepl_of_water_is_the_depth_to_the_voxel_centre():
    ct, _ = water_phantom_with_target()
    spr = GENERIC_TABLE.stopping_power_ratio(ct)
    forward = wepl_map(spr, SPACING, axis=0, direction=1)
    np.testing.assert_allclose(forward[:, 0, 0], (np.arange(20) + 0.5) * 2.0, rtol=1e-6)
    backward = wepl_map(spr, SPACING, axis=2, direction=-1)
    np.testing.assert_allclose(backward[0, 0, :], (np.arange(4)[::-1] + 0.5) * 3.0, rtol=1e-6)


def test_identical_sct_gives_no_range_difference():
    ct, target = water_phantom_with_target()
    spr = GENERIC_TABLE.stopping_power_ratio(ct)
    for axis, direction in ((0, 1), (0, -1), (1, 1)):
        result = range_difference(spr, spr.copy(), target, SPACING, axis, direction)
        assert result["rays"] > 0 and result["rays_beyond_the_sct"] == 0
        assert result["wepl_difference_mm_max_abs"] == 0 and result["range_difference_mm_max_abs"] == 0


@pytest.mark.parametrize("slab_hu", [300.0, -100.0])
def test_a_slab_upstream_shifts_the_range_by_its_extra_wepl(slab_hu):
    """sCT = CT with a 4-voxel (8 mm) slab of another material before the target: dWEPL = (SPR - 1) * 8 mm on every
    ray, and the beam stops that much shorter (or further) in the water behind it: dz = -dWEPL, to 1e-4 mm."""
    ct, target = water_phantom_with_target()
    sct = ct.copy()
    sct[3:7] = slab_hu
    ct_spr, sct_spr = (GENERIC_TABLE.stopping_power_ratio(v) for v in (ct, sct))
    extra = (float(GENERIC_TABLE.stopping_power_ratio(np.array([slab_hu]))[0]) - 1.0) * 4 * SPACING[0]
    result = range_difference(ct_spr, sct_spr, target, SPACING, axis=0, direction=1)
    assert result["rays"] == 8 * 2
    assert np.sign(result["wepl_difference_mm_mean"]) == np.sign(slab_hu)
    assert result["wepl_difference_mm_mean"] == pytest.approx(extra, abs=1e-4)
    assert result["wepl_difference_mm_max_abs"] == pytest.approx(abs(extra), abs=1e-4)
    assert result["range_difference_mm_mean"] == pytest.approx(-extra, abs=1e-4)
    # from the other side the slab is behind the target: no range change
    behind = range_difference(ct_spr, sct_spr, target, SPACING, axis=0, direction=-1)
    assert behind["wepl_difference_mm_max_abs"] == 0 and behind["range_difference_mm_max_abs"] == 0


def test_a_beam_that_leaves_the_sct_is_counted_not_averaged():
    ct, target = water_phantom_with_target()
    sct = ct.copy()
    sct[:16] = -1000.0  # air in the sCT in front of and across the target: the CT's range is never reached
    ct_spr, sct_spr = (GENERIC_TABLE.stopping_power_ratio(v) for v in (ct, sct))
    result = range_difference(ct_spr, sct_spr, target, SPACING, axis=0)
    assert result["rays_beyond_the_sct"] == result["rays"] and np.isnan(result["range_difference_mm_mean"])
    assert result["wepl_difference_mm_mean"] < -25  # 16 voxels of water (32 mm) replaced by air


def test_bad_range_inputs():
    ct, target = water_phantom_with_target()
    with pytest.raises(InputError, match="differ in shape"):
        range_difference(ct, ct[:-1], target, SPACING, axis=0)
    with pytest.raises(InputError, match="target mask is empty"):
        range_difference(ct, ct, np.zeros_like(target), SPACING, axis=0)
    with pytest.raises(InputError, match="beam axis 3"):
        wepl_map(ct, SPACING, axis=3)
    with pytest.raises(InputError, match="direction"):
        wepl_map(ct, SPACING, axis=0, direction=2)


# ------------------------------------------------------------------------------------------- python -m custom dose-eval
def _phantom_files(tmp_path, slab_hu: float = 300.0) -> dict[str, str]:
    """A water head (HU 0) in air, 1 x 2 x 3 mm voxels in LPS-flipped storage (the array's first axis runs from R to
    L), with a target; the sCT has a 4-voxel slab of ``slab_hu`` on the patient's left, between the skin and the
    target. Array axis 0 runs right-to-left, so a beam from the left (L) enters at the last index."""
    import nibabel as nib

    ct = np.full((30, 20, 6), -1000.0, dtype=np.float32)
    ct[3:27, 2:18, :] = 0.0
    sct = ct.copy()
    sct[21:25, 2:18, :] = slab_hu  # near the left skin (high indices are the patient's left)
    target = np.zeros(ct.shape, dtype=np.uint8)
    target[12:18, 8:12, 2:4] = 1
    ct[0, 0, 0] = 1200.0  # a bone voxel in the corner, outside the body: the CT must look like HU
    affine = np.diag([-1.0, 2.0, 3.0, 1.0])  # index 0 grows towards the patient's left
    paths = {}
    for name, array in (("ct", ct), ("sct", sct), ("target", target)):
        paths[name] = str(tmp_path / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(array, affine), paths[name])
    return paths


def test_dose_eval_command_reports_the_slab_on_the_beam_that_crosses_it(tmp_path, capsys):
    import json

    import nibabel as nib

    from custom.cli import main

    files = _phantom_files(tmp_path)
    out = tmp_path / "dose"
    with pytest.raises(SystemExit) as exit_:
        main(["dose-eval", "--ct", files["ct"], "--sct", files["sct"], "--target", files["target"], "--beams", "L,R",
              "--dose", "False", "--out", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert exit_.value.code == 0, text
    report = json.loads((out / "dose_eval.json").read_text())
    extra = (float(GENERIC_TABLE.stopping_power_ratio(np.array([300.0]))[0]) - 1.0) * 4 * 1.0  # 4 voxels of 1 mm
    left, right = report["beams"]["L"], report["beams"]["R"]
    assert left["rays"] == 4 * 2 and left["wepl_difference_mm_mean"] == pytest.approx(extra, abs=1e-4)
    assert left["range_difference_mm_mean"] == pytest.approx(-extra, abs=1e-4)
    assert right["wepl_difference_mm_max_abs"] == 0  # the slab is behind the target for a beam from the right
    assert "| L | 8 |" in text
    wepl = nib.load(out / "wepl_difference_L.nii.gz")
    assert wepl.get_data_dtype() == np.float32 and wepl.shape == (30, 20, 6)
    np.testing.assert_allclose(wepl.affine, np.diag([-1.0, 2.0, 3.0, 1.0]))
    assert float(np.asarray(wepl.dataobj)[10, 10, 3]) == pytest.approx(extra, abs=1e-4)  # downstream of the slab
    from PIL import Image

    assert Image.open(out / "wepl_difference.png").size[0] > 300  # CT | sCT | WEPL difference, one row per beam
    assert not list(out.glob("dose_*.nii.gz"))  # --dose False: no dose engine


@pytest.mark.parametrize(
    "change,says",
    [
        ("photons_without_dose", "--dose False leaves only the proton WEPL surrogate"),
        ("modality", "--modality 'electrons'"),
        ("offgrid", "is not on the grid of the CT"),
        ("eight_bit", "do not look like Hounsfield units"),
        ("eight_bit_sct", "not Hounsfield units (8-bit or normalised sCT?)"),
        ("empty_target", "target mask is empty"),
        ("beam", "beam 'X'"),
        ("missing", "file not found"),
    ],
)
def test_dose_eval_bad_inputs_stop_with_one_line(change, says, tmp_path, capsys):
    import nibabel as nib

    from custom.cli import main

    files = _phantom_files(tmp_path)
    args = ["dose-eval", "--ct", files["ct"], "--sct", files["sct"], "--target", files["target"], "--dose", "False"]
    if change == "photons_without_dose":
        args += ["--modality", "photons"]
    elif change == "modality":
        args += ["--modality", "electrons"]
    elif change == "offgrid":
        nib.save(nib.Nifti1Image(np.zeros((30, 20, 5), np.float32), np.diag([-1.0, 2.0, 3.0, 1.0])), files["sct"])
    elif change == "eight_bit":
        grey = np.linspace(0, 255, 3600, dtype=np.float32).reshape(30, 20, 6)
        nib.save(nib.Nifti1Image(grey, np.eye(4)), files["ct"])
    elif change == "eight_bit_sct":
        grey = np.linspace(0, 255, 3600, dtype=np.float32).reshape(30, 20, 6)
        nib.save(nib.Nifti1Image(grey, np.diag([-1.0, 2.0, 3.0, 1.0])), files["sct"])
    elif change == "empty_target":
        nib.save(nib.Nifti1Image(np.zeros((30, 20, 6), np.uint8), np.diag([-1.0, 2.0, 3.0, 1.0])), files["target"])
    elif change == "beam":
        args += ["--beams", "X"]
    elif change == "missing":
        args[4] = str(tmp_path / "nothing.nii.gz")
    with pytest.raises(SystemExit) as exit_:
        main(args)
    text = capsys.readouterr()
    assert exit_.value.code == 2
    errors = [line for line in text.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0] and "Traceback" not in text.err, text.err


def test_dose_eval_over_a_datalist_split(tmp_path, capsys):
    """Two cases (the slab sCT and a perfect one) with their sCTs in a predictions folder: per-case files and a mean
    over the cases that is the average of the two."""
    import json
    import shutil

    from custom.cli import main

    items = []
    preds = tmp_path / "preds"
    preds.mkdir()
    for case, slab in (("c1", 300.0), ("c2", 0.0)):
        (tmp_path / case).mkdir()
        files = _phantom_files(tmp_path / case, slab_hu=slab)
        shutil.copy(files["sct"], preds / f"{case}_sct.nii.gz")
        items.append({"case": case, "image": files["ct"], "label": files["ct"]})
    (tmp_path / "datalist.json").write_text(json.dumps({"test": items}))
    out = tmp_path / "dose"
    with pytest.raises(SystemExit) as exit_:
        main(["dose-eval", "--datalist", str(tmp_path / "datalist.json"), "--pred_dir", str(preds), "--beams", "L",
              "--dose", "False", "--out", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert exit_.value.code == 0, text
    report = json.loads((out / "dose_eval.json").read_text())
    c1, c2 = (report["cases"][c]["beams"]["L"]["wepl_difference_mm_mean"] for c in ("c1", "c2"))
    assert c1 > 0 and c2 == 0
    assert report["mean over cases"]["beams"]["L"]["wepl_difference_mm_mean"] == pytest.approx((c1 + c2) / 2)
    assert (out / "c1" / "wepl_difference.png").is_file() and (out / "c2" / "wepl_difference_L.nii.gz").is_file()
    assert "| mean | L |" in text
    with pytest.raises(SystemExit) as exit_:
        main(["dose-eval", "--datalist", str(tmp_path / "datalist.json"), "--dose", "False"])
    assert exit_.value.code == 2 and "--pred_dir" in capsys.readouterr().err
