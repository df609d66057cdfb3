"""The procedural lung demo data: deterministic, in the lidc_mask2ct layout, binary masks of the slice's size, dark
lungs and dense nodules where the masks say, and a command of its own."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from custom.data.lidc import NODULE_THRESHOLD
from custom.demo.lungs import make_lung_demo_data, patient_id, synthesize_lung_slice
from custom.errors import InputError
from custom.tools.lidc_layout import lidc_items


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_same_files_in_the_layout(tmp_path):
    first = make_lung_demo_data(str(tmp_path / "a"), patients=3, slices=2, test_patients=1, seed=5, size=48)
    make_lung_demo_data(str(tmp_path / "b"), patients=3, slices=2, test_patients=1, seed=5, size=48)
    files = _files(tmp_path / "a")
    assert files == _files(tmp_path / "b")
    assert sorted(name for name in files if name.startswith("test/")) == [
        "test/clean/LUNGDEMO-0003_lung_mask_30.npy",  # slice numbers 30, 40; groups alternate
        "test/clean/LUNGDEMO-0003_slice_30.png",
        "test/with_nodules/LUNGDEMO-0003_combined_mask_40.npy",
        "test/with_nodules/LUNGDEMO-0003_slice_40.png",
    ]
    assert len(lidc_items(first)) == 6  # the layout reader accepts it (pairs, sizes, 0/1 values)
    make_lung_demo_data(str(tmp_path / "c"), patients=3, slices=2, test_patients=1, seed=6, size=48)
    assert _files(tmp_path / "c") != files


def test_masks_are_binary_and_of_the_slice_size(tmp_path):
    root = tmp_path / "data"
    make_lung_demo_data(str(root), patients=2, slices=2, test_patients=0, seed=0, size=40)
    for mask_path in root.rglob("*.npy"):
        mask = np.load(mask_path)
        kind = "_combined_mask_" if "_combined_mask_" in mask_path.name else "_lung_mask_"
        with Image.open(mask_path.with_name(mask_path.name.replace(kind, "_slice_")).with_suffix(".png")) as png:
            assert png.mode == "L" and png.size == (40, 40)
        assert mask.dtype == np.uint8 and mask.shape == (40, 40) and set(np.unique(mask)) == {0, 1}


def test_anatomy_where_the_masks_say():
    clean = synthesize_lung_slice(seed=0, patient=1, index=2, slices=4, size=96, nodules=False)
    assert not clean.nodules.any() and np.array_equal(clean.combined, clean.lungs)
    lungs = clean.lungs.astype(bool)
    assert 0.08 < lungs.mean() < 0.4
    assert np.median(clean.ct[lungs]) < 50  # aerated lung, about -850 HU
    assert np.percentile(clean.ct[~lungs], 90) > 150  # soft tissue around them
    assert clean.ct[:4, :4].max() < 10  # air outside the body (noise of a few HU)
    nodular = synthesize_lung_slice(seed=0, patient=1, index=2, slices=4, size=96, nodules=True)
    nodules = nodular.nodules.astype(bool)
    assert nodules.any() and np.array_equal(nodular.combined, (nodules | nodular.lungs.astype(bool)).astype(np.uint8))
    assert np.mean(nodular.ct[nodules] >= NODULE_THRESHOLD) > 0.9  # nodules are dense
    assert np.array_equal(nodular.lungs, clean.lungs)  # the same patient and height: the same lungs


def test_a_smaller_rerun_leaves_no_stale_files(tmp_path):
    make_lung_demo_data(str(tmp_path), patients=3, slices=2, test_patients=1, size=32)
    make_lung_demo_data(str(tmp_path), patients=2, slices=1, test_patients=1, size=32)
    assert {p.name.split("_")[0] for p in tmp_path.rglob("*.png")} == {patient_id(0), patient_id(1)}
    assert len(list(tmp_path.rglob("*.npy"))) == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"patients": 1}, "patients"),
        ({"slices": 0}, "slices"),
        ({"test_patients": 3}, "test_patients"),
        ({"size": 16}, "size"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        make_lung_demo_data(str(tmp_path), **{"patients": 3, **kwargs})


def test_command(tmp_path, capsys):
    from custom.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["demo-lung-data", "--out", str(tmp_path), "--patients", "2", "--test_patients", "1", "--size", "32"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == str(tmp_path)
    assert len(list(tmp_path.rglob("test/*/*.png"))) == 6 and (tmp_path / "README.txt").is_file()
