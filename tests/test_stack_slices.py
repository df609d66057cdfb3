"""stack-slices / unstack-slices: 8-bit slice pairs <-> volumes, gaps, the stacked2d datalist, the round trip."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from custom.errors import InputError
from custom.tools.layouts import make_datalist
from custom.tools.stack_slices import slice_body_mask, stack_slices, unstack_slices

AANLIB = Path(__file__).resolve().parents[2] / "shared" / "data" / "aanlib_brain_ct_mr_dev"
SLICES = {"a": [1, 2, 3, 4], "b": [1, 2, 5, 6, 7], "c": [3, 4, 5]}  # b lacks 3 and 4


def _slice_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:20, 0:24]  # 20 rows, 24 columns: a transposed volume would show
    head = ((yy - 10) / 8) ** 2 + ((xx - 12) / 10) ** 2 <= 1
    ct = np.where(head, 90, 0) + rng.integers(0, 5, head.shape)
    mr = np.where(head, 160, 0) + rng.integers(0, 5, head.shape)
    return mr.astype(np.uint8), ct.astype(np.uint8)


@pytest.fixture()
def slices(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "slices"
    for folder in ("MRI", "CT"):
        (root / folder).mkdir(parents=True)
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "subject", "slice"])
        for subject, numbers in SLICES.items():
            for number in numbers:
                name = f"{subject}{number:03d}.png"
                mr, ct = _slice_pair(rng)
                Image.fromarray(mr).save(root / "MRI" / name)
                Image.fromarray(ct).save(root / "CT" / name)
                writer.writerow([name, subject, number])
    return root


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_stack_writes_volumes_masks_and_the_record(slices: Path, tmp_path: Path):
    out = tmp_path / "stack"
    summary = stack_slices(str(slices), str(out), spacing="0.9,0.9,5", min_slices=2)
    assert "4 volumes of 12 slices from 3 subjects" in summary
    record = json.loads((out / "stack.json").read_text())
    cases = {c["case"]: c for c in record["cases"]}
    assert sorted(cases) == ["a", "b_z001-002", "b_z005-007", "c"]  # b split at its gap
    assert cases["b_z005-007"] == {"case": "b_z005-007", "subject": "b", "slices": ["b005.png", "b006.png", "b007.png"]}
    assert record["dropped"] == [] and record["spacing_mm"] == [0.9, 0.9, 5.0]
    ct = nib.load(out / "a" / "ct.nii.gz")
    assert ct.shape == (24, 20, 4) and ct.get_data_dtype() == np.uint8  # x = PNG column, y = row, z = slice order
    np.testing.assert_allclose(ct.affine, np.diag([0.9, 0.9, 5.0, 1.0]))
    for k, name in enumerate(cases["a"]["slices"]):
        np.testing.assert_array_equal(np.asarray(ct.dataobj)[..., k].T, _png(slices / "CT" / name))
        np.testing.assert_array_equal(np.asarray(nib.load(out / "a" / "mr.nii.gz").dataobj)[..., k].T,
                                      _png(slices / "MRI" / name))  # fmt: skip
    mask = np.asarray(nib.load(out / "a" / "mask.nii.gz").dataobj)
    assert set(np.unique(mask)) == {0, 1}
    np.testing.assert_array_equal(mask[..., 0].T, slice_body_mask(_png(slices / "MRI" / "a001.png"),
                                                                  _png(slices / "CT" / "a001.png")))  # fmt: skip


def test_short_runs_are_dropped_and_listed(slices: Path, tmp_path: Path):
    stack_slices(str(slices), str(tmp_path / "stack"), min_slices=3)
    record = json.loads((tmp_path / "stack" / "stack.json").read_text())
    assert [c["case"] for c in record["cases"]] == ["a", "b", "c"]  # b keeps one run: named after its subject
    assert record["cases"][1]["slices"] == ["b005.png", "b006.png", "b007.png"]
    assert record["dropped"] == [{"subject": "b", "slices": ["b001.png", "b002.png"]}]


def test_gaps_refused_on_request(slices: Path, tmp_path: Path):
    with pytest.raises(InputError, match=r"subject b: slice\(s\) \[3, 4\] missing"):
        stack_slices(str(slices), str(tmp_path / "stack"), gaps="refuse")
    assert not (tmp_path / "stack" / "stack.json").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [({"spacing": "1,1"}, "--spacing"), ({"spacing": "1,0,5"}, "--spacing"), ({"gaps": "interpolate"}, "--gaps"),
     ({"min_slices": 0}, "--min-slices")],
)  # fmt: skip
def test_bad_arguments(slices: Path, tmp_path: Path, kwargs, message):
    with pytest.raises(InputError, match=message):
        stack_slices(str(slices), str(tmp_path / "stack"), **kwargs)


def test_manifest_without_slice_numbers(slices: Path, tmp_path: Path):
    (slices / "manifest.csv").write_text("file,subject\na001.png,a\n")
    with pytest.raises(InputError, match="manifest.csv: the manifest needs the column"):
        stack_slices(str(slices), str(tmp_path / "stack"))


def test_stacked2d_datalist_is_eight_bit_and_split_by_subject(slices: Path, tmp_path: Path):
    stack_slices(str(slices), str(tmp_path / "stack"), min_slices=2)
    data = make_datalist(str(tmp_path / "stack"), "stacked2d", str(tmp_path / "d.json"), val_subjects="c",
                         test_subjects="b")  # fmt: skip
    assert data["eight_bit"] is True
    assert sorted(i["case"] for i in data["test"]) == ["b_z001-002", "b_z005-007"]  # both runs of subject b
    assert {i["subject"] for i in data["test"]} == {"b"} and [i["case"] for i in data["training"]] == ["a"]
    assert all(Path(i["mask"]).name == "mask.nii.gz" for i in data["training"])


def test_unstack_round_trip_and_wrong_volumes(slices: Path, tmp_path: Path):
    stack = tmp_path / "stack"
    stack_slices(str(slices), str(stack), min_slices=2)
    pred = tmp_path / "pred"
    pred.mkdir()
    cases = [c["case"] for c in json.loads((stack / "stack.json").read_text())["cases"]]
    for case in cases:  # a perfect sCT: the CT itself
        shutil.copy(stack / case / "ct.nii.gz", pred / f"{case}_sct.nii.gz")
    assert unstack_slices(str(pred), str(stack), str(tmp_path / "png")).endswith("12 slices of 4 volumes")
    for name in (slices / "CT").iterdir():
        np.testing.assert_array_equal(_png(tmp_path / "png" / f"{name.stem}_sct.png"), _png(name))
    shutil.copy(stack / "a" / "ct.nii.gz", pred / "c_sct.nii.gz")  # 4 slices where c has 3
    with pytest.raises(InputError, match="c_sct.nii.gz: 4 slices, its case c has 3"):
        unstack_slices(str(pred), str(stack), str(tmp_path / "png2"))
    (pred / "c_sct.nii.gz").unlink()  # the split that was inferred: those cases only
    assert unstack_slices(str(pred), str(stack), str(tmp_path / "png3"), cases="a,b_z005-007").endswith("of 2 volumes")
    assert len(list((tmp_path / "png3").iterdir())) == 4 + 3  # a's 4 slices and the 3 of b's second run
    with pytest.raises(InputError, match="no case z"):
        unstack_slices(str(pred), str(stack), str(tmp_path / "png4"), cases="a,z")


@pytest.mark.skipif(not AANLIB.is_dir(), reason="AANLIB dev slices (../shared/data) not on this machine")
def test_aanlib_subjects_stack_into_head_volumes(tmp_path: Path):
    stack_slices(str(AANLIB), str(tmp_path / "stack"))
    record = json.loads((tmp_path / "stack" / "stack.json").read_text())
    assert sorted(c["case"] for c in record["cases"]) == ["16", "2", "20", "21", "28", "32"]
    assert record["dropped"] == [{"subject": "32", "slices": ["32003.png"]}]  # 32 lacks slices 4 and 5
    assert nib.load(tmp_path / "stack" / "28" / "mr.nii.gz").shape == (256, 256, 16)
