"""A new bundle is the shared base plus a small override: ``tests/toy_bundle`` is a toy 3D CycleGAN at tiny sizes made
of the blocks of ``bundles/_base/configs`` (paired GAN training, unpaired training, inference) and its own settings and
networks. It trains one epoch and infers, so the README's "Adding a bundle" stays true."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
from conftest import ROOT
from monai.bundle import ConfigWorkflow

from custom.bundles import flat_config
from custom.inference import run_bundle_inference

TOY = ROOT / "tests" / "toy_bundle"
OVERRIDE_LIMIT = 250  # meaningful lines of the toy bundle's configs


def _meaningful_lines(path: Path) -> int:
    """Lines that are more than brackets and commas (as ../shared/tools/config_dup.py counts them)."""
    return sum(
        1 for line in path.read_text().splitlines() if line.strip() and not re.fullmatch(r"[\[\]{},]+", line.strip())
    )


def test_the_toy_bundle_is_a_small_override_of_the_base():
    configs = sorted((TOY / "configs").glob("*.json"))
    assert sum(_meaningful_lines(p) for p in configs) <= OVERRIDE_LIMIT
    train = json.loads((TOY / "configs" / "train.json").read_text())
    taken = [k for k, v in train.items() if isinstance(v, str) and v.startswith("%bundles/_base/")]
    assert {"gan", "generator_losses", "load_transforms", "initialize", "run"} <= set(taken)  # built from the base
    whole = flat_config(TOY / "configs" / "train.json")  # the macros resolve: a complete config
    assert whole["gan"]["generator_mr"].startswith("$custom.networks.for_training")


def test_the_toy_bundle_trains_one_epoch_and_infers(heads_datalist, tmp_path):
    configs = TOY / "configs"
    workflow = ConfigWorkflow(
        config_file=str(configs / "train.json"),
        meta_file=str(configs / "metadata.json"),
        logging_file=False,
        workflow_type="train",
        bundle_root=str(tmp_path),
        datalist=str(heads_datalist),
    )
    workflow.initialize()
    assert not workflow.check_properties()
    workflow.run()
    workflow.finalize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 1 and np.isfinite(trainer.state.metrics["loss_g"])
    model = tmp_path / "models" / "model.pt"
    assert model.is_file() and model.with_suffix(".json").is_file()

    case = json.loads(Path(heads_datalist).read_text())["test"][0]
    (written,) = run_bundle_inference(
        TOY, ckpt=model, dataset_dir=case["image"], output_dir=tmp_path / "out", device="cpu"
    )
    sct, mr = nib.load(written), nib.load(case["image"])
    assert sct.shape == mr.shape and sct.get_data_dtype() == np.int16
    np.testing.assert_allclose(sct.affine, mr.affine, atol=1e-4)
