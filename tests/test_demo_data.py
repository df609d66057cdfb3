"""Tests of the built-in demo data (custom/demo/heads.py): layout, geometry, determinism, tissue intensities."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from custom.demo.heads import TISSUES, case_id, make_demo_data, synthesize_case
from custom.errors import InputError
from custom.images import read_image

FILES = ("mr.nii.gz", "ct.nii.gz", "mask.nii.gz")
SMALL = dict(shape=(32, 32, 16), spacing=(6.0, 6.0, 10.5))  # same field of view as the default grid, fast


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "set"
    assert make_demo_data(str(out), cases=2, seed=3) == str(out)
    return out


@pytest.fixture(scope="module")
def case0():
    return synthesize_case(seed=0, index=0)


def _core(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` whose 6 neighbours are in it too (away from partial-volume borders)."""
    return ndimage.binary_erosion(mask)


def test_layout(demo_dir: Path):
    assert sorted(p.name for p in demo_dir.iterdir()) == ["1HD001", "1HD002", "README.txt"]
    for cid in ("1HD001", "1HD002"):
        assert sorted(p.name for p in (demo_dir / cid).iterdir()) == sorted(FILES)
    assert "NOT PATIENT DATA" in (demo_dir / "README.txt").read_text()
    assert [case_id(i) for i in (0, 9, 99)] == ["1HD001", "1HD010", "1HD100"]


def test_files_match_cases_and_share_geometry(demo_dir: Path):
    for index in range(2):
        case = synthesize_case(seed=3, index=index)
        folder = demo_dir / case_id(index)
        arrays, affines = {}, {}
        for name in FILES:
            arrays[name], affines[name] = read_image(folder / name, ndim=3)
            assert arrays[name].shape == (96, 96, 48)
            np.testing.assert_allclose(affines[name], case.affine, atol=1e-4)
        np.testing.assert_array_equal(arrays["mr.nii.gz"], case.mr)
        np.testing.assert_array_equal(arrays["ct.nii.gz"], case.ct)
        np.testing.assert_array_equal(arrays["mask.nii.gz"], case.mask)
        dtypes = [nib.load(folder / name).get_data_dtype() for name in FILES]
        assert dtypes == [np.dtype(np.int16), np.dtype(np.int16), np.dtype(np.uint8)]
        assert set(np.unique(arrays["mask.nii.gz"])) == {0.0, 1.0}
        assert arrays["mr.nii.gz"].min() >= 0


def test_affine_is_oblique_anisotropic_with_origin(demo_dir: Path):
    affines = [read_image(demo_dir / cid / "ct.nii.gz")[1] for cid in ("1HD001", "1HD002")]
    for affine in affines:
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        np.testing.assert_allclose(spacing, [2.0, 2.0, 3.5], atol=1e-4)
        direction = affine[:3, :3] / spacing
        np.testing.assert_allclose(direction @ direction.T, np.eye(3), atol=1e-4)  # a rotation
        off_diagonal = direction[~np.eye(3, dtype=bool)]
        assert np.abs(off_diagonal).max() > np.sin(np.deg2rad(2))
        angle = np.rad2deg(np.arccos(np.clip((np.trace(direction) - 1) / 2, -1, 1)))
        assert 4.9 < angle < 15.1
        assert np.abs(affine[:3, 3]).max() > 1.0
    assert not np.allclose(affines[0], affines[1])  # geometry varies between cases


def test_same_seed_identical_files_other_seed_different(tmp_path: Path):
    a, b, c = (make_demo_data(str(tmp_path / n), cases=1, seed=s, **SMALL) for n, s in (("a", 5), ("b", 5), ("c", 6)))
    for name in FILES:
        assert (Path(a) / "1HD001" / name).read_bytes() == (Path(b) / "1HD001" / name).read_bytes()
    assert (Path(a) / "README.txt").read_bytes() == (Path(b) / "README.txt").read_bytes()
    for name in FILES:
        arr_a, aff_a = read_image(Path(a) / "1HD001" / name)
        arr_c, aff_c = read_image(Path(c) / "1HD001" / name)
        assert not np.array_equal(arr_a, arr_c)
        assert not np.allclose(aff_a, aff_c)


def test_case_independent_of_case_count_and_varies_with_index():
    first = synthesize_case(seed=1, index=0, **SMALL)
    again = synthesize_case(seed=1, index=0, **SMALL)
    other = synthesize_case(seed=1, index=1, **SMALL)
    for name in ("mr", "ct", "mask", "labels", "affine"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.labels, other.labels)
    assert first.mask.sum() != other.mask.sum()


def test_ct_hounsfield_ranges(case0):
    ct, labels = case0.ct, case0.labels
    assert ct.dtype == np.float32 and np.array_equal(ct, np.rint(ct))
    outside = _core(case0.mask == 0)
    assert abs(np.median(ct[outside]) + 1000) < 15
    assert 4 < ct[outside].std() < 12  # mild noise
    bone = labels == TISSUES["bone"]
    assert ct[bone].max() > 700 and np.median(ct[_core(bone)]) > 700 and ct.max() < 2000
    for tissue in ("grey_matter", "white_matter"):
        assert 0 < np.median(ct[labels == TISSUES[tissue]]) < 60
    assert 0 <= np.median(ct[_core(labels == TISSUES["csf"])]) < 20
    assert np.median(ct[_core(labels == TISSUES["fat"])]) < -50
    assert np.median(ct[labels == TISSUES["marrow"]]) > 150  # diploë: less dense than cortical bone
    sinus = _core((labels == TISSUES["air"]) & (case0.mask == 1))
    assert sinus.sum() > 20 and np.median(ct[sinus]) < -900  # air inside the head


def test_mr_is_t1_like_and_not_a_monotone_map_of_ct(case0):
    mr, ct, labels = case0.mr, case0.ct, case0.labels

    def mean_mr(tissue: str) -> float:
        return float(mr[_core(labels == TISSUES[tissue])].mean())

    brain = min(mean_mr("grey_matter"), mean_mr("white_matter"))
    air_out = float(mr[_core(case0.mask == 0)].mean())
    bone = float(mr[labels == TISSUES["bone"]].mean())
    assert bone < 0.5 * brain and air_out < 0.2 * brain and mean_mr("csf") < 0.5 * brain
    assert mean_mr("white_matter") > mean_mr("grey_matter")
    assert mean_mr("fat") > mean_mr("white_matter")
    assert mean_mr("marrow") > bone  # fatty marrow bright, cortical bone dark
    # bone and air are both dark in MR while CT puts them ~2000 HU apart: no monotone MR -> CT map exists.
    assert float(ct[labels == TISSUES["bone"]].mean()) - float(ct[case0.mask == 0].mean()) > 1500
    assert 0 <= mr.min() and 300 < np.percentile(mr[case0.mask == 1], 99) < 2000


def test_mask_covers_the_head(case0):
    mask, labels = case0.mask.astype(bool), case0.labels
    assert case0.mask.dtype == np.uint8 and 0.15 < mask.mean() < 0.6
    assert not np.any(labels[~mask])  # every tissue is inside the mask
    assert np.array_equal(ndimage.binary_fill_holes(mask), mask)
    assert ndimage.label(mask)[1] == 1
    # the head is within the field of view left-right, front-back and at the top (the neck leaves at the bottom)
    for face in (mask[0], mask[-1], mask[:, 0], mask[:, -1], mask[:, :, -1]):
        assert not face.any()
    for tissue in ("skin", "fat", "bone", "marrow", "csf", "grey_matter", "white_matter", "vitreous"):
        assert (labels == TISSUES[tissue]).sum() > 50, tissue


def test_other_grid_scales_the_head():
    case = synthesize_case(seed=0, index=0, shape=(40, 48, 20), spacing=(5.0, 4.0, 8.4))
    assert case.mr.shape == case.ct.shape == case.mask.shape == (40, 48, 20)
    np.testing.assert_allclose(np.linalg.norm(case.affine[:3, :3], axis=0), [5.0, 4.0, 8.4])
    mask = case.mask.astype(bool)
    assert 0.15 < mask.mean() < 0.6
    assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def test_rerun_replaces_own_cases_only(tmp_path: Path):
    out = tmp_path / "demo"
    make_demo_data(str(out), cases=2, seed=0, **SMALL)
    (out / "notes.txt").write_text("mine")
    (out / "1HD002" / "extra.txt").write_text("mine")
    make_demo_data(str(out), cases=1, seed=0, **SMALL)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "1HD002" / "extra.txt").exists()  # a folder holding foreign files is left alone
    (out / "1HD002" / "extra.txt").unlink()
    make_demo_data(str(out), cases=1, seed=0, **SMALL)
    assert sorted(p.name for p in out.iterdir()) == ["1HD001", "README.txt", "notes.txt"]
    assert not list(out.glob("**/.*"))  # no temporary files left


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(cases=0), "cases"),
        (dict(cases=2.5), "cases"),
        (dict(seed=-1), "seed"),
        (dict(shape=(96, 96)), "shape"),
        (dict(shape="a,b,c"), "shape"),
        (dict(spacing=(2.0, 2.0, 0.0)), "spacing"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, word: str):
    with pytest.raises(InputError, match=word):
        make_demo_data(str(tmp_path / "out"), **kwargs)
    assert not (tmp_path / "out" / "1HD001").exists()


def test_out_is_a_file(tmp_path: Path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        make_demo_data(str(path))


def test_cli(tmp_path: Path, capsys):
    from custom.cli import main

    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as exit_info:
        main(["demo-data", "--out", str(out), "--cases", "1", "--shape", "32,32,16", "--spacing", "6,6,10.5"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert (out / "1HD001" / "ct.nii.gz").is_file()
    assert read_image(out / "1HD001" / "mr.nii.gz")[0].shape == (32, 32, 16)
    with pytest.raises(SystemExit) as exit_info:
        main(["demo-data", "--out", str(out), "--cases", "0"])
    assert exit_info.value.code == 2
    assert "cases" in capsys.readouterr().err
