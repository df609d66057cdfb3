"""Pix2PixUNet: the pix2pix U-Net generator of the mask2ct_lung bundle (Isola et al. 2017), layer by layer."""

from __future__ import annotations

import pytest
import torch
from monai.bundle import ConfigParser
from torch import nn

from custom.networks import Generator, Pix2PixUNet


def _layers(block: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in block.modules() if isinstance(m, kind)]


def test_the_default_is_the_issue_architecture():
    net = Pix2PixUNet()
    convs = [block.conv for block in net.down]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (1, 64),
        (64, 128),
        (128, 256),
        (256, 512),
        (512, 512),
        (512, 512),
    ]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs)
    # instance norm from the second level, LeakyReLU(0.2) everywhere in the encoder
    assert [len(_layers(b, nn.InstanceNorm2d)) for b in net.down] == [0, 1, 1, 1, 1, 1]
    assert all(_layers(b, nn.LeakyReLU)[0].negative_slope == 0.2 for b in net.down)
    # decoder: x2 nearest-neighbour resize then a 3x3 convolution onto the skips, dropout 0.5 in the first three
    # blocks, instance norm and ReLU; the output block: resize and convolution only
    for block in [*net.up, net.out]:
        (resize,) = _layers(block, nn.Upsample)
        (conv,) = _layers(block, nn.Conv2d)
        assert resize.scale_factor == (2.0, 2.0) and resize.mode == "nearest"
        assert conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
    channels = [tuple(_layers(b, nn.Conv2d)[0].weight.shape[1::-1]) for b in [*net.up, net.out]]
    assert channels == [(512, 512), (1024, 512), (1024, 256), (512, 128), (256, 64), (128, 1)]
    assert [[d.p for d in _layers(b, nn.Dropout)] for b in net.up] == [[0.5], [0.5], [0.5], [], []]
    assert all(_layers(b, nn.ReLU) and _layers(b, nn.InstanceNorm2d) for b in net.up)
    assert not _layers(net.out, nn.InstanceNorm2d) and not _layers(net.out, nn.ReLU)


def test_the_published_pix2pix_decoder_is_an_option():
    net = Pix2PixUNet(channels=[8, 16, 16], dropout_blocks=1, upsample="transposed")
    for block in [*net.up, net.out]:
        (conv,) = _layers(block, nn.ConvTranspose2d)
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2) and conv.padding == (1, 1)
        assert not _layers(block, nn.Upsample)
    assert net(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_shapes_skips_and_the_tanh_output():
    generator = Generator(backbone="custom.networks.Pix2PixUNet", channels=[8, 16, 16, 16], dropout_blocks=2)
    generator.eval()
    x = torch.randn(2, 1, 32, 48)
    y = generator(x)
    assert y.shape == (2, 1, 32, 48) and y.abs().max() <= 1.0
    assert torch.equal(y, generator(x))  # dropout is off in eval()
    generator.train()
    assert not torch.equal(generator(x), generator(x))  # ... and on in training
    # every decoder block but the innermost takes its encoder level (skip) with the level below
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1])) for b in generator.backbone.up]
    hooks.append(generator.backbone.out.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1])))
    generator(x)
    for hook in hooks:
        hook.remove()
    assert seen == [16, 32, 32, 16]  # 16 (innermost), then 16 + 16, 16 + 16, 8 + 8 channels


def test_the_definition_rebuilds_it():
    generator = Generator(backbone="custom.networks.Pix2PixUNet", channels=[4, 8, 8], dropout_blocks=1)
    rebuilt = ConfigParser({"net": generator.definition()}).get_parsed_content("net")
    rebuilt.load_state_dict(generator.state_dict(), strict=True)
    assert isinstance(rebuilt.backbone, Pix2PixUNet) and rebuilt.backbone.size_multiple == 8


def test_sizes_it_cannot_take_are_one_clear_error():
    net = Pix2PixUNet(channels=[4, 8, 8], dropout_blocks=0)
    with pytest.raises(ValueError, match=r"\(36, 32\) must be a multiple of 8 .* at least 16"):
        net(torch.zeros(1, 1, 36, 32))
    with pytest.raises(ValueError, match=r"at least 16"):
        net(torch.zeros(1, 1, 8, 16))
    with pytest.raises(ValueError, match="2D"):
        net(torch.zeros(1, 32, 32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channels": [8]}, "at least 2 levels"),
        ({"channels": [8, 0]}, "channels"),
        ({"kernel_size": 3}, "even"),
        ({"dropout": 1.0}, "dropout"),
        ({"channels": [4, 8, 8], "dropout_blocks": 3}, "from 0 to 2"),
        ({"spatial_dims": 1}, "spatial_dims"),
        ({"in_channels": 0}, "in_channels"),
        ({"upsample": "bicubic"}, "upsample"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Pix2PixUNet(**kwargs)


def test_three_dimensional():
    net = Pix2PixUNet(spatial_dims=3, channels=[2, 4], dropout_blocks=1)
    assert net(torch.zeros(1, 1, 8, 8, 16)).shape == (1, 1, 8, 8, 16)
