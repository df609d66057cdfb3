"""Tests of custom.losses.NGFLoss (Normalized Gradient Field loss)."""

from __future__ import annotations

import math

import pytest
import torch

from custom.losses import NGFLoss


def _texture(shape: tuple[int, ...], seed: int = 0, waves: int = 4) -> torch.Tensor:
    """(1, 1, *shape) sum of random plane waves: strong gradients almost everywhere, few flat points."""
    gen = torch.Generator().manual_seed(seed)
    coords = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing="ij")
    image = torch.zeros(shape)
    for _ in range(waves):
        k = torch.randn(len(shape), generator=gen)
        k = k / k.norm() * (0.5 + 0.5 * torch.rand(1, generator=gen))
        phase = 2 * math.pi * torch.rand(1, generator=gen)
        image += torch.sin(sum(ki * c for ki, c in zip(k, coords)) + phase)
    return image[None, None]


def _ramp(shape: tuple[int, ...], axis: int, slope: float = 1.0) -> torch.Tensor:
    coords = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing="ij")
    return (slope * coords[axis])[None, None]


def test_analytic_value_on_ramps():
    eps = 0.1
    loss = NGFLoss(eps=eps)
    a = _ramp((16, 16), axis=1, slope=1.0)
    # parallel ramps with slopes 1 and 2: 1 - (1*2)^2 / ((1 + eps^2)(4 + eps^2)) at every pixel
    expected = 1 - 4 / ((1 + eps**2) * (4 + eps**2))
    assert loss(a, _ramp((16, 16), axis=1, slope=2.0)).item() == pytest.approx(expected, rel=1e-5)
    # orthogonal gradients: the dot product is 0 -> 1 everywhere
    assert loss(a, _ramp((16, 16), axis=0)).item() == pytest.approx(1.0, abs=1e-6)
    # 45 degrees: grad a = (0, 1), grad b = (1, 1): 1 - 1 / ((1 + eps^2)(2 + eps^2))
    b = _ramp((16, 16), axis=0) + _ramp((16, 16), axis=1)
    assert loss(a, b).item() == pytest.approx(1 - 1 / ((1 + eps**2) * (2 + eps**2)), rel=1e-5)


def test_contrast_inversion_invariance():
    loss = NGFLoss()
    a, b = _texture((48, 48), seed=1), _texture((48, 48), seed=2)
    ref = loss(a, b)
    assert torch.allclose(loss(-a, b), ref, atol=1e-6)
    assert torch.allclose(loss(1 - a, b), ref, atol=1e-6)
    assert torch.allclose(loss(a, 1 - b), ref, atol=1e-6)
    # an image against its own inverted copy is as good a match as against itself
    assert torch.allclose(loss(a, -a), loss(a, a), atol=1e-6)
    assert torch.allclose(loss(a, 1 - a), loss(a, a), atol=1e-6)


@pytest.mark.parametrize("shape", [(64, 64), (24, 24, 24)])
def test_identical_much_lower_than_shifted_or_noise(shape):
    loss = NGFLoss()
    a = _texture(shape, seed=3)
    same = loss(a, a).item()
    shifted = loss(a, torch.roll(a, shifts=3, dims=-1)).item()
    noise = torch.rand(a.shape, generator=torch.Generator().manual_seed(4)) * 2 - 1
    assert 0.0 <= same < 0.1
    assert shifted > 5 * same
    assert loss(a, noise).item() > 5 * same


def test_flat_images_finite_values_and_gradients():
    loss = NGFLoss()
    pred = torch.zeros(2, 1, 12, 12, requires_grad=True)
    target = torch.full((2, 1, 12, 12), 0.3)
    value = loss(pred, target)
    value.backward()
    assert torch.isfinite(value) and value.item() == pytest.approx(1.0)  # flat everywhere: the constant 1
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    # flat prediction against a textured target: finite, and the gradient pushes towards the target's edges
    pred3d = torch.full((1, 1, 8, 8, 8), -1.0, requires_grad=True)
    value3d = loss(pred3d, _texture((8, 8, 8)))
    value3d.backward()
    assert torch.isfinite(value3d)
    assert torch.isfinite(pred3d.grad).all()


def test_gradient_reaches_prediction_where_target_has_edges():
    loss = NGFLoss()
    target = _texture((32, 32), seed=5)
    pred = (target + 0.5 * _texture((32, 32), seed=6)).requires_grad_(True)
    loss(pred, target).backward()
    assert pred.grad.abs().sum() > 0
    # a small step against the gradient lowers the loss
    with torch.no_grad():
        before = loss(pred, target).item()
        after = loss(pred - 0.5 * pred.grad / pred.grad.abs().max(), target).item()
    assert after < before


def test_3d_and_explicit_spatial_dims():
    a, b = _texture((16, 16, 16), seed=7), _texture((16, 16, 16), seed=8)
    assert NGFLoss(spatial_dims=3)(a, b).item() == pytest.approx(NGFLoss()(a, b).item())
    with pytest.raises(ValueError, match="5D"):
        NGFLoss(spatial_dims=3)(a[..., 0], b[..., 0])


def test_mask_restricts_to_inside():
    loss = NGFLoss()
    a, b = _texture((40, 40), seed=9), _texture((40, 40), seed=10)
    mask = torch.zeros(1, 1, 40, 40)
    mask[..., 10:30, 12:28] = 1
    inside = loss(a, b, mask)
    # equal to the unmasked loss on the crop, given a one-pixel margin so that the central differences match
    crop = (slice(None), slice(None), slice(9, 31), slice(11, 29))
    crop_mask = torch.zeros(1, 1, 22, 18)
    crop_mask[..., 1:-1, 1:-1] = 1
    assert torch.allclose(inside, loss(a[crop], b[crop], crop_mask), atol=1e-6)
    # pixels more than one pixel outside the mask do not matter; pixels inside do
    b_out = b.clone()
    b_out[..., :8, :] = torch.randn(1, 1, 8, 40)
    b_out[..., :, 30:] = 5.0
    assert torch.allclose(loss(a, b_out, mask), inside, atol=1e-6)
    assert not torch.allclose(loss(a, b_out), loss(a, b), atol=1e-3)
    b_in = b.clone()
    b_in[..., 15:25, 15:25] = torch.flip(b_in[..., 15:25, 15:25], dims=[-1])
    assert not torch.allclose(loss(a, b_in, mask), inside, atol=1e-4)


def test_mask_broadcast_over_channels_and_float_weights():
    a = torch.cat([_texture((20, 20), seed=11), _texture((20, 20), seed=12)], dim=1)
    b = torch.cat([_texture((20, 20), seed=13), _texture((20, 20), seed=14)], dim=1)
    weights = torch.rand(1, 1, 20, 20, generator=torch.Generator().manual_seed(15))
    per_pixel = NGFLoss(reduction="none")(a, b)
    expected = (per_pixel * weights).sum() / (weights.sum() * 2)
    assert torch.allclose(NGFLoss()(a, b, weights), expected, atol=1e-6)
    assert torch.allclose(NGFLoss()(a, b, weights.expand(1, 2, 20, 20)), expected, atol=1e-6)
    # an empty mask gives 0, not NaN
    assert NGFLoss()(a, b, torch.zeros(1, 1, 20, 20)).item() == 0.0


def test_reductions():
    a, b = _texture((2 * 8, 8), seed=16).reshape(2, 1, 8, 8), _texture((16, 8), seed=17).reshape(2, 1, 8, 8)
    none = NGFLoss(reduction="none")(a, b)
    assert none.shape == a.shape
    assert ((none >= -1e-6) & (none <= 1 + 1e-6)).all()
    assert torch.allclose(NGFLoss(reduction="sum")(a, b), none.sum())
    assert torch.allclose(NGFLoss(reduction="mean")(a, b), none.mean())
    mask = torch.zeros(2, 1, 8, 8)
    mask[0, :, 2:6, 2:6] = 1
    assert torch.allclose(NGFLoss(reduction="none")(a, b, mask), none * mask)


@pytest.mark.parametrize("eps", [0, -0.1, float("nan"), float("inf"), "0.1", None])
def test_rejects_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        NGFLoss(eps=eps)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims"):
        NGFLoss(spatial_dims=1)
    with pytest.raises(ValueError):
        NGFLoss(reduction="median")
    loss = NGFLoss()
    a = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="same shape"):
        loss(a, torch.rand(1, 1, 8, 9))
    with pytest.raises(ValueError, match="mask"):
        loss(a, a, torch.ones(1, 1, 8, 9))
    with pytest.raises(ValueError, match="mask"):
        loss(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8), torch.ones(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        loss(torch.rand(8, 8), torch.rand(8, 8))
    with pytest.raises(ValueError, match=">= 2"):
        loss(torch.rand(1, 1, 1, 8), torch.rand(1, 1, 1, 8))
    with pytest.raises(TypeError, match="floating point"):
        loss(torch.ones(1, 1, 4, 4, dtype=torch.int64), torch.ones(1, 1, 4, 4, dtype=torch.int64))
