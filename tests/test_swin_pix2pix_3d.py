"""swin_pix2pix_3d specifics (the generic bundle tests in test_bundles.py also run it): the density-weighted MAE of its
loss and the paper's recipe in its config (torchrun training is tested for every bundle in test_multi_gpu.py)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import ROOT, bundle_configs
from monai.bundle import ConfigParser

from custom.losses import DensityWeightedL1Loss

BUNDLE = "swin_pix2pix_3d"


def test_density_weighted_mae_weighs_bone_more_than_air():
    loss = DensityWeightedL1Loss(value_range=(-1.0, 1.0))
    target = torch.tensor([-1.0, 0.0, 1.0])  # air, soft tissue, the top of the CT window (dense bone)
    values = loss(target + 0.2, target)  # the same error everywhere
    assert values[2] > values[1] > values[0] == 0.0
    torch.testing.assert_close(values, (1 + target) / 2 * 0.2)  # W = (1 + G) / 2
    assert DensityWeightedL1Loss(reduction="mean")(target + 0.2, target) == pytest.approx(values.mean().item())
    with pytest.raises(ValueError, match="value_range"):
        DensityWeightedL1Loss(value_range=(1.0, 1.0))


def test_density_weight_floor_keeps_the_bottom_of_the_window_in_the_loss():
    target = torch.tensor([-1.0, 0.0, 1.0])  # grey level 0 (fat and air in an 8-bit brain window), mid, top
    values = DensityWeightedL1Loss(min_weight=0.25)(target + 0.2, target)
    torch.testing.assert_close(values, (0.25 + 0.75 * (1 + target) / 2) * 0.2)  # m + (1 - m) W
    assert values[0] > 0.0 and values[2] > values[1] > values[0]
    plain = DensityWeightedL1Loss(min_weight=1.0)(target + 0.2, target)
    torch.testing.assert_close(plain, torch.full_like(target, 0.2))  # m = 1 is the plain L1
    with pytest.raises(ValueError, match="min_weight"):
        DensityWeightedL1Loss(min_weight=1.5)


def test_eight_bit_recipe_maps_the_window_inside_tanh():
    """train_stacked.json maps grey levels 0-255 onto [-0.8, 0.8], inside tanh's (-1, 1): bone at 255 (99-100 % of the
    AANLIB bone pixels) is reached at tanh 0.8, not at its asymptote; inference clips what lies beyond the window."""
    parser = ConfigParser()
    parser.read_config([str(bundle_configs(BUNDLE) / f) for f in ("train.json", "train_stacked.json")])
    unit_range = parser.get_parsed_content("unit_range")
    assert -1.0 < unit_range[0] < unit_range[1] < 1.0
    mae = parser.get_parsed_content("generator_losses#mae#loss")
    assert (mae.low, mae.high) == tuple(unit_range)  # the density weight W = (G - a) / (b - a) follows the range
    inference = ConfigParser()
    inference.read_config(str(bundle_configs(BUNDLE) / "inference.json"))
    inference.update({"unit_range": unit_range, "ct_window": [0, 255]})  # as a stacked model's model.json sets them
    to_grey_levels = inference.get_parsed_content("pred_to_ct_range")
    pred = torch.tensor([[-1.0, unit_range[0], 0.0, unit_range[1], 1.0]])
    torch.testing.assert_close(to_grey_levels({"pred": pred})["pred"], torch.tensor([[0.0, 0.0, 127.5, 255.0, 255.0]]))


def test_config_is_the_papers_recipe():
    parser = ConfigParser()
    parser.read_config(str(bundle_configs(BUNDLE) / "train.json"))
    ct_window = parser.get_parsed_content("ct_window")
    assert ct_window == [-1024, 3000]  # (HU + 1024) / 4024 * 2 - 1
    assert parser.get_parsed_content("gan#g_optimizer").__class__.__name__ == "AdamW"
    assert parser.get_parsed_content("learning_rate") == 1e-5
    assert parser.get_parsed_content("gan#lr_lambda")(150) == 1.0  # constant LR
    terms = parser.get_parsed_content("generator_losses")
    assert set(terms) == {"mae", "ssim", "adv"}
    assert isinstance(terms["mae"]["loss"], DensityWeightedL1Loss)
    inferer = parser.get_parsed_content("validate#inferer")
    assert type(inferer).__name__ == "SlidingWindowInferer" and inferer.overlap == 0.5 and inferer.mode == "gaussian"


def test_quick_recipe_decays_the_lr_over_the_second_half_of_its_budget():
    """train_quick.json (0.4.15): LR 2e-4 for the first half of the 25 minutes, then linearly to 0 (chosen on validation
    with the stacked AANLIB heads, against 0.4.13's constant LR: the docs' Performance section). The schedule must
    follow the recipe's own budget handler: a budget of its own would start at max_epochs 1 (LR 0 from epoch 1)."""
    parser = ConfigParser()
    recipe = ("train.json", "train_stacked.json", "train_quick.json")
    parser.read_config([str(bundle_configs(BUNDLE) / f) for f in recipe])
    budget = parser.get_parsed_content("train#handlers#0")  # the budget the LR schedule (gan#lr_lambda) follows
    assert type(budget).__name__ == "TrainingBudget" and budget.seconds == 25 * 60
    budget.max_epochs = 100  # progress through the budget, here by epochs
    lr_lambda = parser.get_parsed_content("gan#lr_lambda")
    assert [lr_lambda(e) for e in (0, 50, 75, 100)] == pytest.approx([1.0, 1.0, 0.5, 0.0])
    assert parser.get_parsed_content("learning_rate") == 2e-4


def test_thin_stacked_eight_bit_volumes_train_and_infer(tmp_path):
    """AANLIB-like heads stacked from 8-bit slices (6 slices, thinner than the 32-slice patch): training pads them by
    repeating the end slices, as inference does; the sCT is grey levels (int16 0-255) on the MR's grid."""
    import csv

    import nibabel as nib
    import numpy as np
    from conftest import train_workflow, write_head_slice_pair

    from custom.inference import run_bundle_inference
    from custom.tools.layouts import make_datalist
    from custom.tools.stack_slices import stack_slices

    rng = np.random.default_rng(0)
    root = tmp_path / "slices"
    root.mkdir()
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "subject", "slice"])
        for subject in range(1, 4):
            for number in range(6):
                write_head_slice_pair(root, f"{subject}{number:03d}.png", (40, 40), (16, 14), (13, 11), rng)
                writer.writerow([f"{subject}{number:03d}.png", subject, number])
    stack_slices(str(root), str(tmp_path / "stack"))
    make_datalist(str(tmp_path / "stack"), "stacked2d", str(tmp_path / "d.json"), val_subjects="2", test_subjects="3")
    work = tmp_path / "work"
    workflow = train_workflow(BUNDLE, tmp_path / "d.json", work, ("train_stacked.json",), crop_size=[40, 40, 32],
                              epochs=1)  # fmt: skip
    assert not workflow.check_properties()
    sample = workflow.parser.get_parsed_content("train#dataset")[0][0]
    assert tuple(sample["image"].shape[1:]) == (32, 32, 32)  # 6 slices padded to the patch
    # fat and air sit at grey level 0 in an 8-bit brain window: the recipe keeps them in the MAE with a floor
    assert workflow.parser.get_parsed_content("generator_losses#mae#loss").min_weight == 0.25
    workflow.run()
    model = work / "models" / "model.pt"
    record = json.loads(model.with_suffix(".json").read_text())["config"]
    assert record["eight_bit"] is True and record["ct_window"] == [0, 255] and record["unit_range"] == [-0.8, 0.8]
    source = tmp_path / "stack" / "3" / "mr.nii.gz"
    (written,) = run_bundle_inference(ROOT / "bundles" / BUNDLE, ckpt=model, dataset_dir=str(source),
                                      output_dir=str(tmp_path / "out"))  # fmt: skip
    sct, mr = nib.load(written), nib.load(source)
    assert sct.shape == mr.shape == (40, 40, 6) and sct.get_data_dtype() == np.int16
    np.testing.assert_allclose(sct.affine, mr.affine)
    values = np.asarray(sct.dataobj)
    assert values.min() >= 0 and values.max() <= 255
