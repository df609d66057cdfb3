"""The checkerboard score, and the bundles' default 2D generators free of the upsampling lattice artefact.

The artefact is a property of the architecture, visible before any training (Odena et al., Distill 2016): the
untrained generator's output on white noise (a flat spectrum) has no excess power on the lattice of its upsampling
frequencies. MONAI's ``UNet`` (kernel-3, stride-2 transposed convolutions), the old pix2pix_ngf default, scores 9-17
there; bilinear upsampling scores about 1.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import BUNDLES, bundle_configs
from monai.bundle import ConfigParser
from monai.networks.nets import UNet

from custom.metrics import checkerboard_score

SIZE = 128
LIMIT = 2.5  # a lattice-free network stays near 1


def _noise_response(network: torch.nn.Module, seeds=(0, 1, 2)) -> float:
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(1, 1, SIZE, SIZE)), dtype=torch.float32)
    scores = []
    for seed in seeds:
        torch.manual_seed(seed)
        for module in network.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        with torch.no_grad():
            scores.append(checkerboard_score(network.eval()(x)[0, 0].numpy()))
    return float(np.mean(scores))


def test_score_of_plain_and_patterned_images():
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(64, 64))
    assert 0.7 < checkerboard_score(noise) < 1.5
    yy, xx = np.mgrid[0:64, 0:64]
    pattern = noise + 0.5 * (-1.0) ** (yy + xx)  # the (pi, pi) checkerboard
    assert checkerboard_score(pattern) > 10
    with pytest.raises(ValueError, match="2D"):
        checkerboard_score(noise[None])
    with pytest.raises(ValueError, match="too small"):
        checkerboard_score(noise[:8, :8])


def test_the_score_catches_transposed_convolution_upsampling():
    unet = UNet(2, 1, 1, channels=(16, 32, 64, 64), strides=(2, 2, 2), num_res_units=0, norm="INSTANCE")
    assert _noise_response(unet) > 2 * LIMIT


@pytest.mark.parametrize("bundle", BUNDLES)
def test_default_2d_generator_has_no_checkerboard(bundle):
    parser = ConfigParser()
    parser.read_config(str(bundle_configs(bundle) / "train.json"))
    if parser.get("network_def#spatial_dims") != 2:
        pytest.skip(f"{bundle}: not a 2D generator")
    assert _noise_response(parser.get_parsed_content("network_def")) < LIMIT
