"""CycleGAN's ResNet generator: shapes in 2D and 3D, both up-sampling modes, the size rule, argument checks, and that
it has no path that bypasses its bottleneck (the reason it is here)."""

from __future__ import annotations

import pytest
import torch

from custom.networks import Generator, ResNetGenerator


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("upsample", ["nontrainable", "deconv"])
def test_output_has_the_input_size(spatial_dims, upsample):
    net = ResNetGenerator(spatial_dims, 1, 1, channels=4, num_blocks=2, upsample=upsample)
    x = torch.rand(2, 1, *([16] * spatial_dims))
    assert net(x).shape == x.shape


def test_the_paper_layout_at_64_channels():
    """c7s1-64, d128, d256, 9 x R256, u128, u64, c7s1-1: 7.8 M conv weights in the paper's generator for 1 channel."""
    net = ResNetGenerator(2, 1, 1, channels=64, num_blocks=9, upsample="deconv")
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [c.out_channels for c in convs[:3]] == [64, 128, 256]
    assert len(convs) == 1 + 2 + 2 * 9 + 2 + 1
    assert [c.kernel_size for c in (convs[0], convs[-1])] == [(7, 7), (7, 7)]
    assert all(c.padding_mode == "reflect" for c in convs if isinstance(c, torch.nn.Conv2d) and c.stride == (1, 1))


def test_no_output_pixel_sees_the_input_without_the_bottleneck():
    """Cut the bottleneck (zero the last down-sampling's output) and the input no longer reaches the output: unlike a
    U-Net, there is no skip connection around it."""
    net = ResNetGenerator(2, 1, 1, channels=4, num_blocks=1).eval()
    down = [m for m in net.model if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)][-1]
    down.register_forward_hook(lambda module, args, out: out * 0)
    x = torch.rand(1, 1, 32, 32, requires_grad=True)
    net(x).sum().backward()
    assert x.grad is not None and torch.count_nonzero(x.grad) == 0


def test_inside_a_generator_with_a_json_definition():
    g = Generator(backbone="custom.networks.ResNetGenerator", spatial_dims=2, channels=4, num_blocks=1)
    assert g.definition()["backbone"] == "custom.networks.ResNetGenerator"
    out = g(torch.rand(1, 1, 8, 8) * 2 - 1)
    assert out.abs().max() <= 1  # tanh


def test_sizes_not_divisible_by_the_down_sampling_are_one_clear_error():
    net = ResNetGenerator(2, 1, 1, channels=4, num_blocks=1, num_downsamples=2)
    with pytest.raises(ValueError, match=r"input size \(30, 32\) must be divisible by 4"):
        net(torch.rand(1, 1, 30, 32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channels": 0}, "channels must be an integer >= 1"),
        ({"num_blocks": -1}, "num_blocks must be an integer >= 0"),
        ({"spatial_dims": 4}, "spatial_dims must be 2 or 3"),
        ({"norm": "group"}, "norm must be 'instance' or 'batch'"),
        ({"upsample": "pixelshuffle"}, "upsample must be one of"),
    ],
)
def test_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResNetGenerator(**kwargs)
