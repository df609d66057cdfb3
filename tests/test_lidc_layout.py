"""The lidc_mask2ct layout: reading <root>/{train,test}/{with_nodules,clean}/ into a datalist split by patient, and one
clear error naming every bad file (slice without mask or the reverse, mask of another size, values other than 0/1,
mask of the wrong kind, unexpected names, a patient in train/ and test/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from custom.data.datalist import SPLITS
from custom.errors import InputError
from custom.tools.layouts import make_datalist


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Four patients of two 32 x 32 slices (one clean, one with nodules); the last one in test/."""
    from custom.demo.lungs import make_lung_demo_data

    root = tmp_path_factory.mktemp("lidc") / "data"
    make_lung_demo_data(root, patients=4, slices=2, test_patients=1, seed=1, size=32)
    return root


@pytest.fixture
def tree(source, tmp_path) -> Path:
    """A copy of the source tree that a test may break."""
    return Path(shutil.copytree(source, tmp_path / "data"))


def datalist(root: Path, **kwargs):
    return make_datalist(str(root), "lidc_mask2ct", str(root.parent / "datalist.json"), **kwargs)


def test_reads_the_layout_and_splits_by_patient(tree):
    data = datalist(tree, val_fraction=0.25, seed=0)
    assert data["layout"] == "lidc_mask2ct" and data["eight_bit"] is True
    items = [it for s in SPLITS for it in data[s]]
    assert len(items) == 8 and len(data["test"]) == 2 and len(data["validation"]) == 2
    for item in items:
        mask, slice_ = Path(item["image"]), Path(item["label"])
        assert mask.suffix == ".npy" and slice_.suffix == ".png" and mask.parent == slice_.parent
        assert item["case"] == mask.stem and item["group"] == mask.parent.name
        kind = "combined_mask" if item["group"] == "with_nodules" else "lung_mask"
        assert mask.name == slice_.name.replace("_slice_", f"_{kind}_").replace(".png", ".npy")
        assert slice_.name.startswith(f"{item['subject']}_slice_")
        assert "mask" not in item and "folder" not in item
    # test/ is the test split, by patient; no patient in two splits
    assert {Path(it["image"]).parts[-3] for it in data["test"]} == {"test"}
    assert {Path(it["image"]).parts[-3] for s in ("training", "validation") for it in data[s]} == {"train"}
    subjects = [{it["subject"] for it in data[s]} for s in SPLITS]
    assert sum(len(s) for s in subjects) == len(set().union(*subjects)) == 4
    assert data["test_subjects"] == ["LUNGDEMO-0004"] and data["val_fraction"] == 0.25
    assert json.loads(Path(data.path).read_text())["test"] == data["test"]


def test_validation_patients_can_be_named(tree):
    data = datalist(tree, val_subjects="LUNGDEMO-0002")
    assert {it["subject"] for it in data["validation"]} == {"LUNGDEMO-0002"}
    with pytest.raises(InputError, match=r"--val-subjects: LUNGDEMO-0004 in .*test \(the test split\)"):
        datalist(tree, val_subjects="LUNGDEMO-0004")


@pytest.mark.parametrize("kwargs", [{"test_fraction": 0.2}, {"test_subjects": "LUNGDEMO-0001"}])
def test_the_test_split_is_the_test_folder(tree, kwargs):
    with pytest.raises(InputError, match="takes its test split from test/"):
        datalist(tree, **kwargs)


def test_float_and_bool_masks_of_0_and_1_are_accepted(tree):
    masks = sorted(tree.glob("train/*/*.npy"))
    np.save(masks[0], np.load(masks[0]).astype(np.float32))
    np.save(masks[1], np.load(masks[1]).astype(bool))
    assert len(datalist(tree)["training"]) + len(datalist(tree)["validation"]) == 6


def _first(tree: Path, pattern: str) -> Path:
    return sorted(tree.glob(pattern))[0]


def _remove_mask(tree: Path) -> tuple[Path, str]:
    mask = _first(tree, "train/clean/*_lung_mask_*.npy")
    mask.unlink()
    return mask.with_name(mask.name.replace("_lung_mask_", "_slice_")).with_suffix(".png"), "slice without its mask"


def _remove_slice(tree: Path) -> tuple[Path, str]:
    mask = _first(tree, "train/with_nodules/*_combined_mask_*.npy")
    mask.with_name(mask.name.replace("_combined_mask_", "_slice_")).with_suffix(".png").unlink()
    return mask, "mask without its slice"


def _resize_mask(tree: Path) -> tuple[Path, str]:
    mask = _first(tree, "test/clean/*.npy")
    np.save(mask, np.zeros((30, 32), np.uint8))
    return mask, r"mask is 30 x 32 \(rows x columns\), its slice is 32 x 32"


def _label_values(tree: Path) -> tuple[Path, str]:
    mask = _first(tree, "train/with_nodules/*.npy")
    np.save(mask, np.load(mask) * 2)
    return mask, "mask values must be 0 or 1, found 2"


def _empty_mask(tree: Path) -> tuple[Path, str]:
    mask = _first(tree, "train/clean/*.npy")
    np.save(mask, np.zeros_like(np.load(mask)))
    return mask, r"empty mask \(no pixel is 1\)"


def _wrong_kind(tree: Path) -> tuple[Path, str]:
    mask = _first(tree, "train/clean/*_lung_mask_*.npy")
    moved = tree / "train" / "with_nodules" / mask.name
    mask.rename(moved)
    return moved, "a lung_mask belongs in clean/"


def _leak(tree: Path) -> tuple[str, str]:
    slice_ = _first(tree, "test/clean/*.png")
    for path in (slice_, slice_.with_name(slice_.name.replace("_slice_", "_lung_mask_")).with_suffix(".npy")):
        shutil.copy(path, tree / "train" / "clean" / path.name)
    copy = tree / "train" / "clean" / slice_.name
    return (
        rf"{tree}/test/\w+/LUNGDEMO-0004_slice_\d+\.png",
        rf"patient LUNGDEMO-0004 is in test/ and in train/ \({copy}\)",
    )


def _stray_file(tree: Path) -> tuple[Path, str]:
    stray = tree / "train" / "clean" / "notes.txt"
    stray.write_text("x")
    return stray, "unexpected file in train/clean/"


def _stray_folder(tree: Path) -> tuple[Path, str]:
    (tree / "val").mkdir()
    return tree / "val", r"unexpected folder \(expected train/ and test/\)"


def _unreadable_mask(tree: Path) -> tuple[Path, str]:
    mask = _first(tree, "test/with_nodules/*.npy")
    mask.write_bytes(b"not numpy")
    return mask, "unreadable mask"


@pytest.mark.parametrize(
    "defect",
    [
        _remove_mask,
        _remove_slice,
        _resize_mask,
        _label_values,
        _empty_mask,
        _wrong_kind,
        _leak,
        _stray_file,
        _stray_folder,
        _unreadable_mask,
    ],
)
def test_each_problem_names_the_file(tree, defect):
    path, problem = defect(tree)
    with pytest.raises(InputError, match=rf"{path}: {problem}"):
        datalist(tree)
    assert not (tree.parent / "datalist.json").exists()


def test_every_problem_is_reported_at_once(tree):
    slice_, _ = _remove_mask(tree)
    mask, _ = _label_values(tree)
    with pytest.raises(InputError, match=r"2 problem\(s\) in the lidc_mask2ct layout") as error:
        datalist(tree)
    assert str(slice_) in str(error.value) and str(mask) in str(error.value)


def test_a_tree_without_train_folder(tmp_path):
    (tmp_path / "data" / "test" / "clean").mkdir(parents=True)
    with pytest.raises(InputError, match=r"no train/ folder for layout lidc_mask2ct"):
        datalist(tmp_path / "data")


def test_subject_options_do_not_apply(tree):
    with pytest.raises(InputError, match="not used by layout lidc_mask2ct"):
        datalist(tree, subject_regex=r"^(\w+)_")
