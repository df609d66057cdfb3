"""Datalists: the format (reading, the evaluation split) and every layout, split by subject (never by slice),
deterministic for a seed, with named validation/test subjects, and clear errors."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from custom.data.datalist import Datalist, evaluation_split, load_datalist, read_datalist, write_datalist
from custom.errors import InputError
from custom.tools.layouts import make_datalist, split_subjects

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
AANLIB = SHARED / "data" / "aanlib_brain_ct_mr_dev"
SPLITS = ("training", "validation", "test")


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")  # the datalist only looks at names
    return path


def synthrad_tree(root: Path, ids, ext: str = ".nii.gz", region: str | None = None, mask: bool = True) -> None:
    for case in ids:
        folder = root / region / case if region else root / case
        for name in ("mr", "ct") + (("mask",) if mask else ()):
            touch(folder / f"{name}{ext}")


def png(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 5), value, np.uint8)).save(path)


def paired2d_tree(root: Path, subjects: dict[str, int], manifest: bool = True) -> dict[str, str]:
    """``subjects``: subject -> number of slices; files ``<subject>_<slice>.png``. Returns file -> subject."""
    truth = {}
    for subject, n in subjects.items():
        for k in range(n):
            name = f"{subject}_{k:02d}.png"
            png(root / "MRI" / name, k)
            png(root / "CT" / name, k)
            truth[name] = subject
    if manifest:
        with open(root / "manifest.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "subject", "slice"])
            writer.writerows([name, subject, 0] for name, subject in truth.items())
    return truth


def split_of(data: dict, key: str = "subject", suffix: str = "") -> dict[str, set[str]]:
    return {s: {item[key] for item in data[s + suffix]} for s in SPLITS}


def assert_disjoint(groups: dict[str, set[str]]) -> None:
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not groups[a] & groups[b], f"shared between {a} and {b}: {groups[a] & groups[b]}"


# ------------------------------------------------------------------------------------------------------ split
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 20])
@pytest.mark.parametrize("val,test", [(0.2, 0.0), (0.2, 0.2), (0.0, 0.0), (0.5, 0.3)])
def test_split_subjects_each_subject_once(n, val, test):
    subjects = [f"s{i}" for i in range(n)] * 3  # repeated names count once
    split = split_subjects(subjects, val, test, seed=1)
    assert sorted(split) == sorted({f"s{i}" for i in range(n)})
    counts = {name: list(split.values()).count(name) for name in SPLITS}
    assert counts["training"] >= 1
    if val > 0 and n >= 2:
        assert counts["validation"] >= 1
    if val == 0:
        assert counts["validation"] == 0
    if test == 0:
        assert counts["test"] == 0
    if n >= 20:  # large enough for the fractions to hold within one subject
        assert abs(counts["validation"] - val * n) <= 1 and abs(counts["test"] - test * n) <= 1


def test_split_subjects_deterministic_and_seeded():
    subjects = [f"p{i}" for i in range(30)]
    assert split_subjects(subjects, 0.3, 0.1, seed=5) == split_subjects(list(reversed(subjects)), 0.3, 0.1, seed=5)
    others = [split_subjects(subjects, 0.3, 0.1, seed=s) for s in range(1, 6)]
    assert any(o != split_subjects(subjects, 0.3, 0.1, seed=0) for o in others)


@pytest.mark.parametrize("val,test", [(-0.1, 0.0), (1.0, 0.0), (0.6, 0.5), ("x", 0.0)])
def test_bad_fractions(val, test):
    with pytest.raises(InputError, match="fraction"):
        split_subjects(["a", "b"], val, test)


# ---------------------------------------------------------------------------------------------------- layouts
def test_synthrad2023_flat(tmp_path):
    ids = [f"1BA{i:03d}" for i in range(1, 8)]
    synthrad_tree(tmp_path / "brain", ids)
    out = tmp_path / "out" / "datalist.json"
    result = make_datalist(str(tmp_path / "brain"), "synthrad2023", str(out), val_fraction=0.3, test_fraction=0.15)
    data = json.loads(out.read_text())
    assert data == {k: v for k, v in result.items()}
    assert data["layout"] == "synthrad2023" and data["eight_bit"] is False
    items = [it for s in SPLITS for it in data[s]]
    assert sorted(it["case"] for it in items) == ids
    assert all(len(data[s]) >= 1 for s in SPLITS)
    for item in items:
        folder = tmp_path / "brain" / item["case"]
        assert item["image"] == str(folder / "mr.nii.gz")
        assert item["label"] == str(folder / "ct.nii.gz")
        assert item["mask"] == str(folder / "mask.nii.gz")
        assert os.path.isabs(item["image"]) and item["subject"] == item["case"]
    assert_disjoint(split_of(data))
    assert [f for f in os.listdir(out.parent)] == ["datalist.json"]  # no temporary file left behind
    assert "7 subjects" in str(result)


def test_synthrad2023_region_level_and_ignored_folders(tmp_path):
    synthrad_tree(tmp_path, ["1BA001", "1BA002"], region="brain")
    synthrad_tree(tmp_path, ["1PA001", "1PA002", "1PA003"], region="pelvis")
    (tmp_path / "brain" / "overview").mkdir()  # SynthRAD ships an overview folder: not a case
    touch(tmp_path / "brain" / "overview" / "1_brain_train.xlsx")
    data = make_datalist(str(tmp_path), "synthrad2023", str(tmp_path / "d.json"))
    cases = sorted(it["case"] for s in SPLITS for it in data[s])
    assert cases == ["1BA001", "1BA002", "1PA001", "1PA002", "1PA003"]
    assert {it["image"] for it in data["training"] + data["validation"]} == {
        str(tmp_path / r / c / "mr.nii.gz") for r, c in [("brain", "1BA001"), ("brain", "1BA002")]
    } | {str(tmp_path / "pelvis" / c / "mr.nii.gz") for c in ("1PA001", "1PA002", "1PA003")}
    assert len(data["validation"]) == 1 and len(data["test"]) == 0


def test_synthrad2025_mha_and_no_mask(tmp_path):
    synthrad_tree(tmp_path, ["1HNA001", "1HNA002", "1HNA003"], ext=".mha", region="HN", mask=False)
    data = make_datalist(str(tmp_path), "synthrad2025", str(tmp_path / "d.json"))
    items = [it for s in SPLITS for it in data[s]]
    assert len(items) == 3
    assert all(it["image"].endswith("mr.mha") and it["label"].endswith("ct.mha") for it in items)
    assert all("mask" not in it for it in items)
    # the .nii.gz layout on an .mha tree: no cases, with a hint
    with pytest.raises(InputError, match="no cases found.*use --layout synthrad2025"):
        make_datalist(str(tmp_path), "synthrad2023", str(tmp_path / "e.json"))


def test_synthrad_errors(tmp_path):
    synthrad_tree(tmp_path / "a", ["1BA001", "1BA002"])
    (tmp_path / "a" / "1BA002" / "ct.nii.gz").unlink()
    with pytest.raises(InputError, match=r"mr\.nii\.gz without ct\.nii\.gz in 1 case.*1BA002"):
        make_datalist(str(tmp_path / "a"), "synthrad2023", str(tmp_path / "d.json"))
    synthrad_tree(tmp_path / "b", ["1BA001", "1BA002", "1BA003"])
    (tmp_path / "b" / "1BA003" / "mask.nii.gz").unlink()
    with pytest.raises(InputError, match="mask.nii.gz is missing in 1 of 3 cases"):
        make_datalist(str(tmp_path / "b"), "synthrad2023", str(tmp_path / "d.json"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no cases found"):
        make_datalist(str(tmp_path / "empty"), "synthrad2023", str(tmp_path / "d.json"))
    with pytest.raises(InputError, match="dataset folder not found"):
        make_datalist(str(tmp_path / "nowhere"), "synthrad2023", str(tmp_path / "d.json"))
    with pytest.raises(InputError, match="unknown layout"):
        make_datalist(str(tmp_path / "a"), "nnunet", str(tmp_path / "d.json"))
    assert not (tmp_path / "d.json").exists()


def test_paired2d_manifest_splits_by_subject(tmp_path):
    truth = paired2d_tree(tmp_path, {"2": 4, "16": 3, "20": 5, "21": 2, "28": 3})
    out = tmp_path / "d.json"
    data = make_datalist(str(tmp_path), "paired2d", str(out), val_fraction=0.2, test_fraction=0.2, seed=3)
    assert data["eight_bit"] is True and data["layout"] == "paired2d"
    items = [it for s in SPLITS for it in data[s]]
    assert len(items) == len(truth)
    for item in items:
        name = Path(item["image"]).name
        assert item["label"] == str(tmp_path / "CT" / name) and item["image"] == str(tmp_path / "MRI" / name)
        assert item["subject"] == truth[name] and item["case"] == name[: -len(".png")]
        assert "mask" not in item
    groups = split_of(data)
    assert_disjoint(groups)
    assert all(groups[s] for s in SPLITS)
    # every slice of a subject in the split of that subject
    for split in SPLITS:
        for subject in groups[split]:
            assert sum(it["subject"] == subject for it in data[split]) == list(truth.values()).count(subject)


def test_paired2d_subject_regex_and_errors(tmp_path):
    truth = paired2d_tree(tmp_path, {"a": 3, "b": 2, "c": 2}, manifest=False)
    with pytest.raises(InputError, match="subject of each slice is unknown"):
        make_datalist(str(tmp_path), "paired2d", str(tmp_path / "d.json"))
    data = make_datalist(str(tmp_path), "paired2d", str(tmp_path / "d.json"), subject_regex=r"^([a-z]+)_\d+")
    assert {Path(it["image"]).name: it["subject"] for s in SPLITS for it in data[s]} == truth
    assert_disjoint(split_of(data))
    with pytest.raises(InputError, match="does not match"):
        make_datalist(str(tmp_path), "paired2d", str(tmp_path / "d.json"), subject_regex=r"^(\d+)_")
    with pytest.raises(InputError, match="needs a group"):
        make_datalist(str(tmp_path), "paired2d", str(tmp_path / "d.json"), subject_regex=r"^[a-z]+")
    # a manifest that misses a slice
    with open(tmp_path / "partial.csv", "w") as f:
        f.write("file,subject\na_00.png,a\n")
    with pytest.raises(InputError, match="not listed in the manifest: a_01.png"):
        make_datalist(str(tmp_path), "paired2d", str(tmp_path / "d.json"), manifest=str(tmp_path / "partial.csv"))
    with open(tmp_path / "bad.csv", "w") as f:
        f.write("name,patient\na_00.png,a\n")
    with pytest.raises(InputError, match="needs 'file' and 'subject' columns"):
        make_datalist(str(tmp_path), "paired2d", str(tmp_path / "d.json"), manifest=str(tmp_path / "bad.csv"))
    # MR slice without CT
    png(tmp_path / "MRI" / "z_00.png")
    with pytest.raises(InputError, match="MR slice.* without a CT.*z_00.png"):
        make_datalist(str(tmp_path), "paired2d", str(tmp_path / "d.json"), subject_regex=r"^([a-z]+)_")


def test_unpaired(tmp_path):
    mr = [f"mr_{i}.nii.gz" for i in range(6)]
    ct = [f"ct_{i}.mha" for i in range(4)]
    for name in mr:
        touch(tmp_path / "MR" / name)
    for name in ct:
        touch(tmp_path / "CT" / name)
    touch(tmp_path / "CT" / "notes.txt")  # not a volume: ignored
    data = make_datalist(str(tmp_path), "unpaired", str(tmp_path / "d.json"), seed=2)
    assert not any(s in data for s in SPLITS)
    mr_items = [it for s in SPLITS for it in data[f"{s}_mr"]]
    ct_items = [it for s in SPLITS for it in data[f"{s}_ct"]]
    assert sorted(Path(it["image"]).name for it in mr_items) == sorted(mr)
    assert sorted(Path(it["label"]).name for it in ct_items) == sorted(ct)
    assert all(set(it) == {"image", "case", "subject"} for it in mr_items)
    assert all(set(it) == {"label", "case", "subject"} for it in ct_items)
    assert data["validation_mr"] and data["validation_ct"] and data["training_mr"] and data["training_ct"]
    assert_disjoint(split_of(data, suffix="_mr"))
    assert_disjoint(split_of(data, suffix="_ct"))
    assert load_datalist(tmp_path / "d.json", "training_ct") == data["training_ct"]
    (tmp_path / "empty" / "MR").mkdir(parents=True)
    (tmp_path / "empty" / "CT").mkdir()
    with pytest.raises(InputError, match="no volumes found"):
        make_datalist(str(tmp_path / "empty"), "unpaired", str(tmp_path / "e.json"))


def test_deterministic_for_a_seed(tmp_path):
    synthrad_tree(tmp_path / "data", [f"1PC{i:03d}" for i in range(12)])
    root, a, b = str(tmp_path / "data"), tmp_path / "a.json", tmp_path / "b.json"
    make_datalist(root, "synthrad2023", str(a), val_fraction=0.25, seed=7)
    make_datalist(root, "synthrad2023", str(b), val_fraction=0.25, seed=7)
    assert a.read_bytes() == b.read_bytes()
    splits = set()
    for seed in range(5):
        data = make_datalist(root, "synthrad2023", str(b), val_fraction=0.25, seed=seed)
        splits.add(frozenset(it["case"] for it in data["validation"]))
    assert len(splits) > 1  # the seed matters


def test_load_datalist_resolves_relative_paths(tmp_path, monkeypatch):
    folder = tmp_path / "lists"
    folder.mkdir()
    absolute = str(tmp_path / "abs" / "mr.nii.gz")
    (folder / "d.json").write_text(
        json.dumps(
            {
                "training": [{"image": "../data/mr.nii.gz", "label": "ct.nii.gz", "case": "x"}],
                "validation": [{"image": absolute, "case": "y"}],
            }
        )
    )
    monkeypatch.chdir(tmp_path)  # relative to the datalist's folder, not to the working folder
    items = load_datalist(folder / "d.json", "training")
    assert items == [{"image": str(tmp_path / "data" / "mr.nii.gz"), "label": str(folder / "ct.nii.gz"), "case": "x"}]
    assert load_datalist(str(folder / "d.json"), "validation")[0]["image"] == absolute
    assert read_datalist(folder / "d.json")["training"] == items
    with pytest.raises(InputError, match=r"no split 'test' \(available: training, validation\)"):
        load_datalist(folder / "d.json", "test")
    with pytest.raises(InputError, match="datalist not found"):
        load_datalist(folder / "missing.json", "training")
    (folder / "bad.json").write_text("{ not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_datalist(folder / "bad.json", "training")
    (folder / "list.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="not a datalist"):
        load_datalist(folder / "list.json", "training")


def test_summary_and_seed_recorded(tmp_path):
    """What ``python -m custom datalist`` prints (``str()`` of the result) and records; CLI tests check the rest."""
    paired2d_tree(tmp_path / "data", {"1": 2, "2": 2, "3": 1})
    out = tmp_path / "d.json"
    result = make_datalist(str(tmp_path / "data"), "paired2d", str(out), seed=1)
    assert isinstance(result, Datalist) and result.path == str(out)
    assert str(result).startswith(str(out)) and "3 subjects" in str(result)
    assert json.loads(out.read_text())["seed"] == 1
    with pytest.raises(InputError, match="dataset folder not found"):
        make_datalist(str(tmp_path / "nowhere"), "paired2d", str(out))
    with pytest.raises(InputError, match="--seed: expected an integer"):
        make_datalist(str(tmp_path / "data"), "paired2d", str(out), seed=1.5)


# ---------------------------------------------------------------------------------------------- named subjects
SUBJECTS = {"2": 4, "16": 3, "20": 5, "21": 2, "28": 3}


def named(tmp_path: Path, **kwargs) -> dict:
    """A paired2d datalist of ``SUBJECTS`` made with ``kwargs``, as written to the JSON."""
    if not (tmp_path / "data").is_dir():
        paired2d_tree(tmp_path / "data", SUBJECTS)
    make_datalist(str(tmp_path / "data"), "paired2d", str(tmp_path / "d.json"), **kwargs)
    return json.loads((tmp_path / "d.json").read_text())


@pytest.mark.parametrize("value", ["20,28", "20 28", " 28, 20 ", (20, 28), ["20", 28], ("20,28",)])
def test_named_validation_subjects_forms(tmp_path, value):
    data = named(tmp_path, val_subjects=value, seed=4)
    groups = split_of(data)
    assert groups["validation"] == {"20", "28"}
    assert groups["training"] == {"2", "16", "21"} and groups["test"] == set()
    assert data["val_subjects"] == ["20", "28"] and "val_fraction" not in data
    assert data["test_fraction"] == 0.0 and "test_subjects" not in data
    assert len(data["validation"]) == SUBJECTS["20"] + SUBJECTS["28"]  # every slice of a named subject


def test_named_int_subject_and_fraction_ignored(tmp_path):
    # fire turns ``--test_subjects 20`` into an int; the named split ignores its fraction (0.4 + 0.6 would be >= 1)
    data = named(tmp_path, test_subjects=20, val_fraction=0.4, test_fraction=0.6, seed=1)
    groups = split_of(data)
    assert groups["test"] == {"20"} and data["test_subjects"] == ["20"] and "test_fraction" not in data
    # validation is still drawn by its fraction (of all 5 subjects) from the 4 others, with the seed
    assert len(groups["validation"]) == 2 and "20" not in groups["validation"] and data["val_fraction"] == 0.4
    assert_disjoint(groups)
    assert split_of(named(tmp_path, test_subjects="20", val_fraction=0.4, seed=1)) == groups  # deterministic
    draws = {frozenset(split_of(named(tmp_path, test_subjects=20, seed=s))["validation"]) for s in range(6)}
    assert len(draws) > 1 and not any("20" in d for d in draws)


def test_named_both_splits(tmp_path):
    data = named(tmp_path, val_subjects="2", test_subjects=("16", "21"), val_fraction=0.0, test_fraction=0.0)
    assert split_of(data) == {"validation": {"2"}, "test": {"16", "21"}, "training": {"20", "28"}}
    assert data["val_subjects"] == ["2"] and data["test_subjects"] == ["16", "21"]
    assert "val_fraction" not in data and "test_fraction" not in data


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"val_subjects": "20,99"},
            r"--val-subjects: unknown subject\(s\) 99 \(the data has 5 subjects: 2, 16, 20, 21, 28",
        ),
        ({"test_subjects": 7}, r"--test-subjects: unknown subject\(s\) 7 "),
        ({"val_subjects": "20,21", "test_subjects": "21"}, "--val-subjects and --test-subjects both name 21"),
        ({"val_subjects": "2,16,20", "test_subjects": "21 28"}, r"name every subject \(2, 16, 20, 21, 28\).*training"),
        ({"val_subjects": ""}, "--val-subjects: no subject id given"),
        ({"val_subjects": 1.5}, "--val-subjects: expected subject ids"),
        ({"test_subjects": True}, "--test-subjects: expected subject ids"),
    ],
)
def test_named_subject_errors(tmp_path, kwargs, message):
    paired2d_tree(tmp_path / "data", SUBJECTS)
    with pytest.raises(InputError, match=message):
        named(tmp_path, **kwargs)
    assert not (tmp_path / "d.json").exists()


def test_named_unknown_subjects_listing_is_truncated(tmp_path):
    synthrad_tree(tmp_path / "data", [f"1BA{i:03d}" for i in range(1, 13)])
    with pytest.raises(InputError, match=r"unknown subject\(s\) 1BA099 .*12 subjects: 1BA001, .*1BA010 and 2 more"):
        make_datalist(str(tmp_path / "data"), "synthrad2023", str(tmp_path / "d.json"), val_subjects="1BA099")


def test_split_subjects_named():
    subjects = [f"s{i}" for i in range(10)]
    split = split_subjects(subjects, 0.2, 0.2, seed=3, test_subjects=("s1", "s2", "s3"))
    assert {s for s, name in split.items() if name == "test"} == {"s1", "s2", "s3"}
    assert sum(name == "validation" for name in split.values()) == 2 and sorted(split) == sorted(subjects)
    with pytest.raises(InputError, match="s10"):
        split_subjects(subjects, val_subjects="s10")
    with pytest.raises(InputError, match="none left for training"):
        split_subjects(["a", "b"], val_subjects="a", test_subjects="b")


def test_named_unpaired_per_domain(tmp_path):
    for i in range(4):
        touch(tmp_path / "MR" / f"mr_{i}.nii.gz")
        touch(tmp_path / "CT" / f"ct_{i}.nii.gz")
    out = str(tmp_path / "d.json")
    data = make_datalist(str(tmp_path), "unpaired", out, val_subjects="mr_1,ct_2", test_subjects=["ct_3"])
    assert split_of(data, suffix="_mr")["validation"] == {"mr_1"} and split_of(data, suffix="_mr")["test"] == set()
    assert split_of(data, suffix="_ct") == {"validation": {"ct_2"}, "test": {"ct_3"}, "training": {"ct_0", "ct_1"}}
    assert data["val_subjects"] == ["ct_2", "mr_1"] and data["test_subjects"] == ["ct_3"]
    # a name in neither domain
    with pytest.raises(InputError, match=r"unknown subject\(s\) xx_1 .*8 subjects"):
        make_datalist(str(tmp_path), "unpaired", out, val_subjects="mr_1,xx_1")
    # a domain where every subject is named
    with pytest.raises(InputError, match=r"\(CT volumes\): .*every subject \(ct_0, ct_1, ct_2, ct_3\)"):
        make_datalist(str(tmp_path), "unpaired", out, val_subjects="ct_0,ct_1", test_subjects="ct_2,ct_3")


# ------------------------------------------------------------------------------------------------------ format
def test_read_datalist_of_a_dict_reads_nothing(tmp_path, monkeypatch):
    data = {"training": [{"image": "relative/mr.nii.gz", "case": "a"}], "test": []}

    def no_reading(*args, **kwargs):
        raise AssertionError("read a file")

    monkeypatch.setattr("builtins.open", no_reading)
    assert read_datalist(data) is data and data["training"][0]["image"] == "relative/mr.nii.gz"
    assert load_datalist(data, "training") is data["training"]
    with pytest.raises(InputError, match=r"^datalist: no split 'validation'"):
        load_datalist(data, "validation")


def test_read_datalist_once_and_pass_it_around(tmp_path):
    path = tmp_path / "d.json"
    write_datalist({"training": [{"image": "mr.nii.gz", "case": "a"}], "validation": []}, path)
    data = read_datalist(path)
    assert isinstance(data, Datalist) and data.path == str(path)
    assert read_datalist(data) is data
    assert load_datalist(data, "training")[0]["image"] == str(tmp_path / "mr.nii.gz")
    with pytest.raises(InputError, match=f"^{path}: no split 'test'"):
        load_datalist(data, "test")


def test_evaluation_split(tmp_path):
    item = {"image": "mr.nii.gz", "label": "ct.nii.gz", "case": "a"}
    path = tmp_path / "d.json"
    write_datalist({"training": [item], "validation": [item], "test": [item]}, path)
    data = read_datalist(path)
    assert evaluation_split(data) == "test"
    assert evaluation_split(data, "training") == "training"  # an explicit split wins
    data["test"] = []
    assert evaluation_split(data) == "validation"
    assert evaluation_split({"validation": [item]}) == "validation"  # no test list at all
    with pytest.raises(InputError, match=f"^{path}: the 'test' list is missing or empty .*training, validation"):
        evaluation_split(data, "test")
    with pytest.raises(InputError, match=f"^{path}: the 'holdout' list is missing or empty"):
        evaluation_split(data, "holdout")
    data["validation"] = []
    with pytest.raises(InputError, match=f"^{path}: the 'validation' list is missing or empty"):
        evaluation_split(data)
    with pytest.raises(InputError, match="^datalist: the 'validation' list"):
        evaluation_split({"training": [item]})


# --------------------------------------------------------------------------------------------------- real data
def test_aanlib_dev_paired2d(tmp_path):
    if not (AANLIB / "manifest.csv").is_file():
        pytest.skip(f"{AANLIB} not available")
    with open(AANLIB / "manifest.csv", newline="") as f:
        truth = {row["file"]: row["subject"] for row in csv.DictReader(f)}
    data = make_datalist(str(AANLIB), "paired2d", str(tmp_path / "aanlib.json"), val_fraction=0.2, test_fraction=0.2)
    items = [it for s in SPLITS for it in data[s]]
    assert len(items) == 106
    assert {it["subject"] for it in items} == set(truth.values()) and len(set(truth.values())) == 6
    assert all(truth[Path(it["image"]).name] == it["subject"] for it in items)
    assert all(Path(it["image"]).is_file() and Path(it["label"]).is_file() for it in items)
    groups = split_of(data)
    assert_disjoint(groups)
    assert all(groups[s] for s in SPLITS)
    # the file names also encode the subject (<subject><slice:03d>.png): same assignment from a regex
    regex = make_datalist(str(AANLIB), "paired2d", str(tmp_path / "re.json"), subject_regex=r"^(\d+)\d{3}\.png$")
    assert {it["case"]: it["subject"] for s in SPLITS for it in regex[s]} == {it["case"]: it["subject"] for it in items}


def test_summary_of_a_datalist_with_named_subjects(tmp_path):
    """The printed summary counts the item lists only, not the recorded subject names."""
    from custom.data.datalist import Datalist

    data = Datalist({"training": [{"subject": "1"}], "validation": [{"subject": "2"}], "val_subjects": ["2"]})
    assert str(data) == "None datalist with 1 training, 1 validation (2 subjects)"
