"""swin_pix2pix_3d specifics (the generic bundle tests in test_bundles.py also run it): the density-weighted MAE of its
loss and the paper's recipe in its config (torchrun training is tested for every bundle in test_multi_gpu.py)."""

from __future__ import annotations

import pytest
import torch
from conftest import bundle_configs
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
