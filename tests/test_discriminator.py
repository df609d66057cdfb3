"""Tests of custom.networks.MultiScaleDiscriminator and custom.losses.feature_matching_loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from monai.losses import PatchAdversarialLoss

from custom.losses import feature_matching_loss
from custom.networks import MultiScaleDiscriminator


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_structure_2d_two_channels():
    torch.manual_seed(0)
    net = MultiScaleDiscriminator(spatial_dims=2, in_channels=2, channels=8, num_layers_d=3, num_d=2)
    out = net(torch.randn(2, 2, 64, 64, generator=_gen()))
    assert isinstance(out, list) and len(out) == 2
    for scale in out:
        # first conv, num_layers_d blocks, final conv -> logits last
        assert isinstance(scale, list) and len(scale) == 3 + 2
        assert scale[-1].shape[:2] == (2, 1)
        assert [f.shape[1] for f in scale[:-1]] == [8, 16, 32, 64]
    # by hand, kernel 4 / padding 1: 64 -> 32 -> 16 -> 8 -> 7 (stride 1) -> 6 (final conv); pooled 32 -> ... -> 2
    assert out[0][-1].shape[2:] == (6, 6)
    assert out[1][-1].shape[2:] == (2, 2)
    assert net.output_shapes((64, 64)) == [(6, 6), (2, 2)]


def test_scale_k_sees_input_average_pooled_k_times():
    torch.manual_seed(0)
    net = MultiScaleDiscriminator(spatial_dims=2, in_channels=1, channels=4, num_layers_d=2, num_d=3).eval()
    x = torch.randn(1, 1, 96, 80, generator=_gen(1))
    out = net(x)
    pooled = x
    for k in range(3):
        expected = net.discriminators[k](pooled)[-1]
        assert torch.allclose(out[k][-1], expected, atol=1e-6)
        pooled = F.avg_pool2d(pooled, kernel_size=3, stride=2, padding=1, count_include_pad=False)
    sizes = [o[-1].shape[2:] for o in out]
    assert sizes[0][0] > sizes[1][0] > sizes[2][0] and sizes[0][1] > sizes[1][1] > sizes[2][1]
    # the scales are separate networks, not shared weights
    p0, p1 = (next(d.parameters()) for d in net.discriminators[:2])
    assert p0 is not p1


def test_3d_structure_and_sizes():
    torch.manual_seed(0)
    net = MultiScaleDiscriminator(spatial_dims=3, in_channels=2, channels=4, num_layers_d=2, num_d=2, norm="BATCH")
    out = net(torch.randn(2, 2, 32, 32, 24, generator=_gen(2)))
    assert len(out) == 2 and all(len(s) == 2 + 2 for s in out)
    # 32 -> 16 -> 8 -> 7 -> 6; 24 -> 12 -> 6 -> 5 -> 4; pooled 16 -> 2, 12 -> 1
    assert out[0][-1].shape == (2, 1, 6, 6, 4)
    assert out[1][-1].shape == (2, 1, 2, 2, 1)
    assert isinstance(net.downsample, torch.nn.AvgPool3d)


def test_gradients_flow_and_monai_adversarial_loss():
    torch.manual_seed(0)
    net = MultiScaleDiscriminator(spatial_dims=2, in_channels=2, channels=4, num_layers_d=2, num_d=2)
    fake = torch.randn(2, 2, 48, 48, generator=_gen(3), requires_grad=True)
    out = net(fake)
    adv = PatchAdversarialLoss(criterion="least_squares")
    loss = adv([o[-1] for o in out], target_is_real=True, for_discriminator=False)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    for k, disc in enumerate(net.discriminators):
        grads = [p.grad for p in disc.parameters()]
        assert all(g is not None for g in grads), f"scale {k} has parameters without gradient"
        assert sum(g.abs().sum() for g in grads) > 0


def test_minimum_input_size():
    net = MultiScaleDiscriminator(spatial_dims=2, in_channels=1, channels=4, num_layers_d=3, num_d=2)
    n = net.min_input_size()
    # the coarse scale sees ~n/2, and 3 layers + the two stride-1 convs need >= 3 * 2**3 pixels there
    assert 40 < n < 64
    out = net(torch.randn(1, 1, n, n, generator=_gen(4)))  # instance norm, batch 1, training mode
    assert min(out[-1][-1].shape[2:]) >= 1
    with pytest.raises(ValueError, match=f">= {n}"):
        net(torch.randn(1, 1, n - 1, 64))
    three_scales = MultiScaleDiscriminator(spatial_dims=2, in_channels=1, channels=4, num_layers_d=3, num_d=3)
    assert three_scales.min_input_size() > n


def test_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="num_d"):
        MultiScaleDiscriminator(spatial_dims=2, in_channels=1, num_d=0)
    with pytest.raises(ValueError, match="num_layers_d"):
        MultiScaleDiscriminator(spatial_dims=2, in_channels=1, num_layers_d=0)
    with pytest.raises(ValueError, match="spatial_dims"):
        MultiScaleDiscriminator(spatial_dims=1, in_channels=1)
    with pytest.raises(ValueError, match="in_channels"):
        MultiScaleDiscriminator(spatial_dims=2, in_channels=0)
    with pytest.raises(ValueError, match="dropout"):
        MultiScaleDiscriminator(spatial_dims=2, in_channels=1, dropout=1.5)
    net = MultiScaleDiscriminator(spatial_dims=2, in_channels=2, channels=4)
    with pytest.raises(ValueError, match="2 input channels"):
        net(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="spatial"):
        net(torch.randn(1, 2, 64, 64, 64))


def test_feature_matching_loss():
    torch.manual_seed(0)
    net = MultiScaleDiscriminator(spatial_dims=2, in_channels=1, channels=4, num_layers_d=2, num_d=2)
    real = torch.randn(2, 1, 48, 48, generator=_gen(5), requires_grad=True)
    fake = torch.randn(2, 1, 48, 48, generator=_gen(6), requires_grad=True)
    real_out = net(real)
    assert feature_matching_loss(real_out, real_out).item() == 0.0
    fake_out = net(fake)
    value = feature_matching_loss(real_out, fake_out)
    per_scale = [
        torch.stack([(f - r).abs().mean() for r, f in zip(rs[:-1], fs[:-1])]).mean()
        for rs, fs in zip(real_out, fake_out)
    ]
    expected = torch.stack(per_scale).mean()
    assert value.item() > 0 and torch.allclose(value, expected)
    value.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert real.grad is None  # real features are detached
    # logits excluded by default: changing only the logits does not change the loss
    shifted = [s[:-1] + [s[-1] + 10.0] for s in fake_out]
    assert torch.allclose(feature_matching_loss(real_out, shifted), value)
    assert feature_matching_loss(real_out, shifted, include_last=True) > value
    # a single PatchDiscriminator's list works too
    single = feature_matching_loss(real_out[0], fake_out[0])
    assert single.item() > 0 and torch.allclose(single, feature_matching_loss([real_out[0]], [fake_out[0]]))
    with pytest.raises(ValueError, match="scales"):
        feature_matching_loss(real_out, fake_out[:1])
    with pytest.raises(TypeError):
        feature_matching_loss(torch.zeros(1), fake_out)
