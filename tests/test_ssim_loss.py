"""SeparableSSIMLoss is MONAI's SSIMLoss (Gaussian window) computed with 1D windows; the bundles train with it."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import ROOT
from monai.losses import SSIMLoss

from custom.losses import SeparableSSIMLoss


def _pair(shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    target = torch.rand(shape, dtype=dtype) * 2 - 1
    # a prediction that partly follows the target
    return (0.7 * target + 0.3 * torch.rand(shape, dtype=dtype)).requires_grad_(), target


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 1, 40, 33), {}),
        ((1, 3, 24, 20, 15), {}),
        ((2, 1, 30, 28, 26), {"win_size": [7, 9, 5], "kernel_sigma": [1.0, 2.0, 0.8], "k1": 0.02, "k2": 0.05}),
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_equals_monai_ssim_loss_with_gradients(shape, kwargs, reduction):
    spatial_dims = len(shape) - 2
    x, y = _pair(shape)
    ours = SeparableSSIMLoss(spatial_dims, data_range=2.0, reduction=reduction, **kwargs)(x, y)
    (gradient,) = torch.autograd.grad(ours.sum(), x)
    monai = SSIMLoss(spatial_dims, data_range=2.0, reduction=reduction, **kwargs)(x, y)
    (expected_gradient,) = torch.autograd.grad(monai.sum(), x)
    assert ours.shape == monai.shape and float(ours.sum()) / x.shape[0] > 0.05  # not a trivial 0
    # MONAI computes in float32 whatever the input; ours in float64 here: what is left is float32 rounding
    torch.testing.assert_close(ours, monai.double(), atol=1e-5, rtol=1e-5)
    scale = float(expected_gradient.abs().max())
    torch.testing.assert_close(gradient, expected_gradient.double(), atol=1e-4 * scale, rtol=0)


def test_identical_images_give_zero_and_autocast_is_kept_out():
    x, _ = _pair((2, 1, 32, 32, 16), torch.float32)
    loss = SeparableSSIMLoss(3, data_range=2.0)
    assert float(loss(x, x.detach())) == pytest.approx(0.0, abs=1e-6)
    y = torch.rand_like(x)
    with torch.autocast("cpu", torch.bfloat16):
        mixed = loss(x.to(torch.bfloat16), y)
    assert mixed.dtype == torch.float32  # the statistics in float32, not bf16
    reference = loss(x.to(torch.bfloat16).float(), y)
    torch.testing.assert_close(mixed, reference, atol=1e-6, rtol=1e-6)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        SeparableSSIMLoss(1)
    with pytest.raises(ValueError, match="one positive value per axis"):
        SeparableSSIMLoss(3, win_size=[11, 11])
    with pytest.raises(ValueError, match="reduction"):
        SeparableSSIMLoss(2, reduction="max")
    loss = SeparableSSIMLoss(2)
    with pytest.raises(ValueError, match="of one shape"):
        loss(torch.rand(1, 1, 20, 20), torch.rand(1, 1, 20, 21))
    with pytest.raises(ValueError, match="smaller than its window"):
        loss(torch.rand(1, 1, 20, 8), torch.rand(1, 1, 20, 8))


@pytest.mark.parametrize("bundle", ["swin_pix2pix_3d", "mask2ct_lung"])
def test_bundles_train_with_the_separable_loss(bundle):
    losses = json.loads((ROOT / "bundles" / bundle / "configs" / "train.json").read_text())["generator_losses"]
    assert losses["ssim"]["loss"].startswith("$custom.losses.SeparableSSIMLoss(")
