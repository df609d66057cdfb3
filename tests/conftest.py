"""Shared fixtures: the bundles under test, tiny training settings per bundle, and small data sets.

Every folder of ``bundles/`` is a bundle under test (``BUNDLES``); its tiny training overrides live in
``tests/tiny/<bundle>.json`` (a few channels, 48-pixel patches, 2 epochs), so adding a bundle adds it to the
parametrized bundle tests. The entry ``"test_data"`` of that file (not an override) names the data the bundle is
tested on, a key of ``BUNDLE_DATA`` (default ``"heads"``: procedural NIfTI head volumes, MR in, sCT volume out;
``"lung_slices"``: procedural lung mask ``.npy`` in, 8-bit CT slice PNG out).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from custom.bundles import bundle_names

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: one thread each (and in their subprocesses) instead of four
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = bundle_names(ROOT / "bundles")


def bundle_configs(bundle: str) -> Path:
    return ROOT / "bundles" / bundle / "configs"


def _tiny_file(bundle: str) -> dict:
    path = ROOT / "tests" / "tiny" / f"{bundle}.json"
    assert path.is_file(), f"{path}: every bundle needs tiny test settings"
    return json.loads(path.read_text())


def tiny_overrides(bundle: str) -> dict:
    """The bundle's tiny training settings (``tests/tiny/<bundle>.json`` without its ``"test_data"`` entry)."""
    return {k: v for k, v in _tiny_file(bundle).items() if k != "test_data"}


def _nifti_on_the_input_grid(written: Path, source: str) -> None:
    import nibabel as nib

    sct, mr = nib.load(written), nib.load(source)
    assert sct.shape == mr.shape and sct.get_data_dtype() == np.int16
    np.testing.assert_allclose(sct.affine, mr.affine, atol=1e-4)


def _png_of_the_mask_size(written: Path, source: str) -> None:
    from PIL import Image

    rows, columns = np.load(source).shape
    with Image.open(written) as sct:
        assert sct.size == (columns, rows) and sct.mode == "L"


@dataclass(frozen=True)
class BundleData:
    """What a bundle is tested on and what it must produce from it."""

    fixture: str  # the session fixture giving the datalist
    output_ext: str  # suffix of the written predictions
    mae_metric: str  # name of the MAE in the evaluation summary
    output_format: str  # metadata network_data_format outputs.pred.format
    record_keys: frozenset[str]  # settings training records beside the model (model.json)
    check_output: Callable[[Path, str], None]  # (prediction, input file): the prediction fits its input


BUNDLE_DATA = {
    "heads": BundleData(
        "heads_datalist",
        ".nii.gz",
        "synthrad2023_mae",
        "hounsfield",
        frozenset({"network_def", "patch_size", "ct_window", "axcodes", "eight_bit"}),
        _nifti_on_the_input_grid,
    ),
    "lung_slices": BundleData(
        "lung_datalist",
        ".png",
        "mae",
        "magnitude",
        frozenset({"network_def", "image_size", "ct_window", "eight_bit"}),
        _png_of_the_mask_size,
    ),
}


def bundle_data(bundle: str) -> BundleData:
    """The data ``bundle`` is tested on (``"test_data"`` in ``tests/tiny/<bundle>.json``, default ``"heads"``)."""
    name = _tiny_file(bundle).get("test_data", "heads")
    assert name in BUNDLE_DATA, f"tests/tiny/{bundle}.json: test_data {name!r} is not one of {sorted(BUNDLE_DATA)}"
    return BUNDLE_DATA[name]


def train_workflow(bundle: str, datalist: Path, work: Path, variants: tuple[str, ...] = (), **overrides):
    """An initialized training ``ConfigWorkflow`` of ``bundle`` (train.json + ``variants``) with tiny settings."""
    from monai.bundle import ConfigWorkflow

    configs = bundle_configs(bundle)
    workflow = ConfigWorkflow(
        config_file=[str(configs / "train.json")] + [str(configs / v) for v in variants],
        meta_file=str(configs / "metadata.json"),
        logging_file=False,
        workflow_type="train",
        bundle_root=str(work),
        datalist=str(datalist),
        ckpt_dir=str(work / "models"),
        output_dir=str(work / "runs"),
        **{**tiny_overrides(bundle), **overrides},
    )
    workflow.initialize()
    return workflow


@pytest.fixture(scope="session")
def heads_datalist(tmp_path_factory) -> Path:
    """Four procedural head cases (48 x 48 x 10), split 2 / 1 / 1 by subject."""
    from custom.demo.heads import make_demo_data
    from custom.tools.layouts import make_datalist

    root = tmp_path_factory.mktemp("heads")
    make_demo_data(root / "data", cases=4, seed=3, shape=(48, 48, 10))
    make_datalist(root / "data", "synthrad2023", root / "datalist.json", val_fraction=0.25, test_fraction=0.25)
    return root / "datalist.json"


def write_head_slice_pair(
    root: Path,
    name: str,
    shape: tuple[int, int],
    head: tuple[int, int],
    brain: tuple[int, int],
    rng: np.random.Generator,
) -> None:
    """An 8-bit MR/CT PNG pair ``<root>/MRI/<name>`` and ``<root>/CT/<name>``: an elliptic head (semi-axes ``head``,
    rows then columns) whose rim outside the ``brain`` ellipse is skull (CT 255, MR 20) around soft tissue (CT 90, MR
    160), centred in an image of ``shape`` (rows, columns), plus noise."""
    from PIL import Image

    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    cy, cx = shape[0] // 2, shape[1] // 2
    inside = ((yy - cy) / head[0]) ** 2 + ((xx - cx) / head[1]) ** 2 <= 1
    skull = inside & (((yy - cy) / brain[0]) ** 2 + ((xx - cx) / brain[1]) ** 2 > 1)
    ct = np.where(skull, 255, np.where(inside, 90, 0)) + rng.integers(0, 5, inside.shape)
    mr = np.where(skull, 20, np.where(inside, 160, 0)) + rng.integers(0, 5, inside.shape)
    for folder, image in (("MRI", mr), ("CT", ct)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / folder / name)


@pytest.fixture(scope="session")
def png_datalist(tmp_path_factory) -> Path:
    """Three subjects of 8-bit MR/CT PNG slices, 56 wide and 48 high (non-square, to catch transposed outputs)."""
    from custom.tools.layouts import make_datalist

    root = tmp_path_factory.mktemp("png")
    rng = np.random.default_rng(0)
    for subject in range(3):
        for index in range(2):
            write_head_slice_pair(root, f"s{subject}_{index}.png", (48, 56), (20, 24), (17, 21), rng)
    make_datalist(root, "paired2d", root / "datalist.json", val_fraction=0.34, subject_regex=r"^s(\d)_")
    return root / "datalist.json"


@pytest.fixture(scope="session")
def lung_datalist(tmp_path_factory) -> Path:
    """Five procedural lung patients, four 64 x 64 slices each (alternately clean and with nodules) in the
    lidc_mask2ct layout: 3 training, 1 validation and 1 test patient (its test/ folder)."""
    from custom.demo.lungs import make_lung_demo_data
    from custom.tools.layouts import make_datalist

    root = tmp_path_factory.mktemp("lungs")
    make_lung_demo_data(root / "data", patients=5, slices=4, test_patients=1, seed=3, size=64)
    make_datalist(root / "data", "lidc_mask2ct", root / "datalist.json", val_fraction=0.25)
    return root / "datalist.json"
