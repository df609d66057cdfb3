"""Dataset checks: one message per kind of bad input, all problems reported together, CLI exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from custom.data.check import assert_valid_items, check_case, check_datalist
from custom.errors import InputError
from custom.outputs import write_nifti, write_png

SHAPE = (8, 9, 10)
AFFINE = np.array([[1.2, 0, 0, 10.0], [0, 1.2, 0, -20.0], [0, 0, 2.5, 5.0], [0, 0, 0, 1]])


def _mr() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 800, SHAPE).astype(np.float32)


def _ct() -> np.ndarray:
    ct = np.full(SHAPE, -1000, dtype=np.int16)
    ct[2:6, 2:7, 2:8] = 40
    ct[3:5, 3:5, 3:5] = 1200
    return ct


def _mask() -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[2:6, 2:7, 2:8] = 1
    return mask


def make_case(folder: Path, **overrides) -> dict:
    """A clean case in ``folder`` (MR, CT, mask); ``overrides`` replace arrays/affines: ``ct=array``,
    ``ct_affine=affine``, ``mask=array``... The files are written with ``custom.outputs.write_nifti``."""
    folder.mkdir(parents=True, exist_ok=True)
    item = {"case": folder.name}
    for key, name, array, dtype in (
        ("image", "mr", _mr(), np.float32),
        ("label", "ct", _ct(), np.int16),
        ("mask", "mask", _mask(), np.uint8),
    ):
        array = overrides.get(name, array)
        affine = overrides.get(f"{name}_affine", AFFINE)
        path = folder / f"{name}.nii.gz"
        write_nifti(array, affine, path, dtype=dtype if np.asarray(array).dtype.kind != "f" else np.float32)
        item[key] = str(path)
    return item


def messages(problems) -> str:
    return "\n".join(f"{f}: {p}" for f, p in problems)


def test_clean_case_has_no_problem(tmp_path):
    assert check_case(make_case(tmp_path / "ok")) == []
    # a difference below the tolerances is not a problem
    nudged = AFFINE.copy()
    nudged[:3, 3] += 2e-4
    assert check_case(make_case(tmp_path / "nudged", ct_affine=nudged)) == []


def test_missing_and_corrupt_files(tmp_path):
    item = make_case(tmp_path / "c")
    item["label"] = str(tmp_path / "c" / "nowhere.nii.gz")
    corrupt = tmp_path / "c" / "corrupt.nii.gz"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    item["mask"] = str(corrupt)
    problems = check_case(item)
    assert (item["label"], "file not found") in problems
    assert any(f == str(corrupt) and "unreadable" in p for f, p in problems)
    assert len(problems) == 2


def test_4d_volume(tmp_path):
    item = make_case(tmp_path / "c")
    nib.save(nib.Nifti1Image(np.zeros(SHAPE + (2,), np.float32), AFFINE), item["image"])
    problems = check_case(item)
    assert len(problems) == 1
    assert problems[0][0] == item["image"] and "4D" in problems[0][1] and "expected 3D" in problems[0][1]


def test_shape_mismatch(tmp_path):
    ct = np.full((8, 9, 11), -1000, np.int16)
    ct[..., 5] = 1000
    item = make_case(tmp_path / "c", ct=ct)
    problems = check_case(item)
    assert problems == [(item["label"], "shape (8, 9, 11) differs from the MR's (8, 9, 10)")]


def test_shifted_origin(tmp_path):
    shifted = AFFINE.copy()
    shifted[1, 3] += 0.5
    item = make_case(tmp_path / "c", ct_affine=shifted)
    problems = check_case(item)
    assert len(problems) == 1
    file, problem = problems[0]
    assert file == item["label"] and "origin" in problem and "0.5 mm" in problem


def test_spacing_mismatch(tmp_path):
    other = AFFINE.copy()
    other[2, 2] = 3.0
    item = make_case(tmp_path / "c", mask_affine=other)
    problems = check_case(item)
    assert len(problems) == 1 and problems[0][0] == item["mask"] and "voxel spacing" in problems[0][1]


def test_flipped_orientation(tmp_path):
    flipped = AFFINE.copy()
    flipped[:3, 0] *= -1  # first axis now runs right-to-left: LAS instead of RAS
    item = make_case(tmp_path / "c", ct_affine=flipped)
    problems = check_case(item)
    assert len(problems) == 1
    file, problem = problems[0]
    assert file == item["label"] and "orientation LAS" in problem and "RAS" in problem


def test_oblique_rotation(tmp_path):
    angle = np.deg2rad(1.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    rotated = AFFINE.copy()
    rotated[:3, :3] = rotation @ AFFINE[:3, :3]
    item = make_case(tmp_path / "c", ct_affine=rotated)
    problems = check_case(item)
    assert len(problems) == 1 and "direction cosines" in problems[0][1]


def test_empty_mask_nan_and_non_hu_ct(tmp_path):
    mr = _mr()
    mr[1, 2, 3] = np.nan
    mr[2, 2, 3] = np.inf
    ct = np.linspace(0, 1, int(np.prod(SHAPE)), dtype=np.float32).reshape(SHAPE)  # normalised CT
    item = make_case(tmp_path / "c", mr=mr, ct=ct, mask=np.zeros(SHAPE, np.uint8))
    problems = check_case(item)
    text = messages(problems)
    assert f"{item['image']}: 2 NaN or infinite value(s) in the MR" in text
    assert f"{item['mask']}: empty mask" in text
    assert any(f == item["label"] and "Hounsfield" in p for f, p in problems)
    assert len(problems) == 3
    # the same CT is fine for 8-bit data (grey levels; a volume, as stacked slices are)
    assert check_case({"label": item["label"]}, eight_bit=True) == []


def test_without_voxels_the_header_says_the_geometry_and_the_loader_the_voxels(tmp_path):
    """Inference's split check: ``voxels=False`` reads NIfTI headers only (the same shapes, affines and geometry
    problems as a full read), and ``LoadCheckedImaged`` reports the voxel problems with ``check``'s messages."""
    from custom.images import read_geometry, read_image
    from custom.transforms import LoadCheckedImaged

    mr = _mr()
    mr[1, 2, 3] = np.nan
    shifted = AFFINE.copy()
    shifted[:3, 3] += 5.0
    item = make_case(tmp_path / "c", mr=mr, mask=np.zeros(SHAPE, np.uint8), mask_affine=shifted)
    for key in ("image", "mask"):
        shape, affine = read_geometry(item[key], ndim=3)
        array, full_affine = read_image(item[key], ndim=3)
        assert shape == array.shape and np.array_equal(affine, full_affine)
    full, header_only = check_case(item), check_case(item, voxels=False)
    assert len(full) == 3 and header_only == [p for p in full if "origin" in p[1]]
    assert len(header_only) == 1 and header_only[0][0] == item["mask"]
    loader = LoadCheckedImaged(keys=["image", "mask"], allow_missing_keys=True)
    with pytest.raises(InputError, match=r"mr\.nii\.gz: 1 NaN or infinite value\(s\) in the MR$"):
        loader({"image": item["image"]})
    with pytest.raises(InputError, match=r"mask\.nii\.gz: empty mask"):
        loader({"mask": item["mask"]})
    good = make_case(tmp_path / "good")
    loaded = loader({"image": good["image"], "mask": good["mask"]})
    assert np.array_equal(np.asarray(loaded["image"]), read_image(good["image"])[0])
    loader._loader.image_only = False  # as MONAI Label sets it on a bundle's loaders: metadata beside the image
    with_meta = loader({"image": good["image"]})
    assert with_meta["image_meta_dict"]["filename_or_obj"] == good["image"]
    assert np.array_equal(np.asarray(with_meta["image"]), np.asarray(loaded["image"]))


def test_ct_without_air_is_not_hu(tmp_path):
    ct = _ct()
    ct[ct == -1000] = 0  # background 0: min > -500
    item = make_case(tmp_path / "c", ct=ct)
    assert [f for f, p in check_case(item) if "Hounsfield" in p] == [item["label"]]


def test_eight_bit_png_case(tmp_path):
    rng = np.random.default_rng(2)
    mr, ct = tmp_path / "mr.png", tmp_path / "ct.png"
    write_png(rng.integers(0, 256, (16, 16)), mr)
    write_png(rng.integers(0, 256, (16, 16)), ct)
    assert check_case({"image": str(mr), "label": str(ct)}, eight_bit=True) == []
    write_png(rng.integers(0, 256, (16, 12)), ct)
    problems = check_case({"image": str(mr), "label": str(ct)}, eight_bit=True)
    assert len(problems) == 1 and "shape" in problems[0][1]
    # 2D slices in a 3D datalist: says it
    problems = check_case({"image": str(mr)})
    assert len(problems) == 1 and "expected 3D" in problems[0][1] and "eight-bit" in problems[0][1]


def _write_datalist(path: Path, **splits) -> str:
    path.write_text(json.dumps({"training": [], "validation": [], "test": [], "layout": "synthrad2023", **splits}))
    return str(path)


def test_all_problems_of_a_datalist_reported_together(tmp_path):
    good = make_case(tmp_path / "good")
    shifted = AFFINE.copy()
    shifted[0, 3] -= 3
    bad1 = make_case(tmp_path / "bad1", ct_affine=shifted)
    bad2 = make_case(tmp_path / "bad2", mask=np.zeros(SHAPE, np.uint8))
    bad2["image"] = str(tmp_path / "bad2" / "missing.nii.gz")
    # hand-written relative paths are resolved against the datalist's folder
    rel = {k: str(Path(v).relative_to(tmp_path)) if k != "case" else v for k, v in good.items()}
    datalist = _write_datalist(
        tmp_path / "datalist.json", training=[good, bad1], validation=[bad2], test=[dict(rel, case="good")]
    )
    problems = check_datalist(datalist)
    text = messages(problems)
    assert f"{bad1['label']}: origin" in text
    assert f"{bad2['image']}: file not found" in text
    assert f"{bad2['mask']}: empty mask" in text
    # the same case and the same files in training and test: leakage
    assert "case good is in both training and test" in text
    assert f"{good['image']}: in both training and test" in text
    assert not any(f.startswith(str(tmp_path / "good")) and "leakage" not in p for f, p in problems)
    assert len(problems) == 3 + 1 + 3  # 3 case problems, 1 case leak, 3 file leaks (image, label, mask)

    with pytest.raises(InputError) as e:
        assert_valid_items([good, bad1, bad2])
    message = str(e.value)
    assert message.startswith("3 problems in the data (3 cases)") and "training" not in message
    for line in (f"{bad1['label']}: origin", f"{bad2['image']}: file not found", f"{bad2['mask']}: empty mask"):
        assert line in message
    assert_valid_items([good])  # no error


def test_check_command_exit_codes(tmp_path, capsys):
    from custom.cli import main

    good = make_case(tmp_path / "good")
    other = make_case(tmp_path / "other")
    clean = _write_datalist(tmp_path / "clean.json", training=[good], validation=[other])
    with pytest.raises(SystemExit) as e:
        main(["check", "--datalist", clean])
    assert e.value.code == 0
    assert "OK: 2 cases, no problems" in capsys.readouterr().out

    nan_mr = _mr()
    nan_mr[0, 0, 0] = np.nan
    bad = make_case(tmp_path / "bad", mr=nan_mr, mask=np.zeros(SHAPE, np.uint8))
    dirty = _write_datalist(tmp_path / "dirty.json", training=[good, bad], validation=[other])
    with pytest.raises(SystemExit) as e:
        main(["check", "--datalist", dirty])
    assert e.value.code == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["FILE", "PROBLEM"]
    assert bad["image"] in out and "NaN" in out and bad["mask"] in out and "empty mask" in out
    assert "2 problem(s) in 2 file(s); 3 cases checked" in out

    with pytest.raises(SystemExit) as e:  # a missing datalist is bad input: one line, exit code 2
        main(["check", "--datalist", str(tmp_path / "nowhere.json")])
    assert e.value.code == 2
    assert "nowhere.json: datalist not found" in capsys.readouterr().err


def test_datalist_eight_bit_flag_from_json(tmp_path):
    rng = np.random.default_rng(4)
    items = []
    for name in ("a", "b"):
        mr, ct = tmp_path / f"mr_{name}.png", tmp_path / f"ct_{name}.png"
        write_png(rng.integers(0, 256, (12, 12)), mr)
        write_png(rng.integers(0, 256, (12, 12)), ct)
        items.append({"image": str(mr), "label": str(ct), "case": name, "subject": name})
    path = tmp_path / "png.json"
    path.write_text(json.dumps({"training": items[:1], "validation": items[1:], "eight_bit": True}))
    assert check_datalist(path) == []
    assert all("expected 3D" in p for _, p in check_datalist(path, eight_bit=False))


def test_training_applies_the_datalist_rules_of_check(tmp_path, caplog):
    """What assert_valid_items adds with the datalist (the call in every train.json): the same rules as check."""
    from custom.data.datalist import read_datalist

    good = make_case(tmp_path / "good")
    other = make_case(tmp_path / "other")
    leaky = read_datalist(_write_datalist(tmp_path / "leaky.json", training=[good], validation=[other], test=[good]))
    with pytest.raises(InputError, match="case good is in both training and test"):
        assert_valid_items(leaky["training"] + leaky["validation"], datalist=leaky)
    with caplog.at_level("WARNING"):
        assert_valid_items(leaky["training"] + leaky["validation"], datalist=leaky, allow_overlap=True)
    assert "case good is in both training and test (data leakage); going on (allow_overlap)" in caplog.text
    twice = read_datalist(_write_datalist(tmp_path / "twice.json", training=[good, good], validation=[other]))
    with pytest.raises(InputError, match="case good is listed more than once in training"):
        assert_valid_items(twice["training"], datalist=twice)
    no_training = read_datalist(_write_datalist(tmp_path / "none.json", validation=[other]))
    del no_training["training"]
    with pytest.raises(InputError, match="no 'training' list"):
        assert_valid_items(no_training["validation"], datalist=no_training)


@pytest.mark.parametrize("training", [["mr.nii.gz"], "mr.nii.gz", [["mr.nii.gz"]]])
def test_a_datalist_of_file_names_is_refused_when_read(tmp_path, training):
    from custom.data.datalist import read_datalist

    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": training}))
    with pytest.raises(InputError, match=r"datalist.json: .*'training'"):
        read_datalist(path)


def test_a_subject_with_another_ct_window_is_named(tmp_path, capsys):
    """8-bit CTs of one subject windowed differently (every soft-tissue level +60): ``check`` warns and names that
    subject only, without failing (exit code 0)."""
    from custom.cli import main

    rng = np.random.default_rng(5)
    items = []
    for subject, shift in (("1", 0), ("2", 5), ("3", -4), ("4", 60)):
        for n in range(2):
            mr, ct = tmp_path / f"mr_{subject}_{n}.png", tmp_path / f"ct_{subject}_{n}.png"
            write_png(rng.integers(0, 256, (24, 24)), mr)
            tissue = np.clip(rng.normal(100 + shift, 10, (24, 24)), 20, 249)
            tissue[:4] = 0  # air
            tissue[-3:] = 255  # saturated bone
            write_png(np.round(tissue), ct)
            items.append({"image": str(mr), "label": str(ct), "case": f"{subject}_{n}", "subject": subject})
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": items[:6], "validation": items[6:], "eight_bit": True}))
    with pytest.raises(SystemExit) as e:
        main(["check", "--datalist", str(path)])
    assert e.value.code == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "subject 4:" in warnings[0] and "window" in warnings[0], warnings
    # the same data with every subject in the same window: no warning
    for item in items[6:]:
        write_png(np.clip(np.round(rng.normal(100, 10, (24, 24))), 20, 249), item["label"])
    with pytest.raises(SystemExit) as e:
        main(["check", "--datalist", str(path)])
    assert e.value.code == 0 and "WARNING" not in capsys.readouterr().out
