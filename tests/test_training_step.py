"""The faster training step (``custom.networks.for_training(..., channels_last=True)``, every bundle's default) computes
the same thing as the plain one: channels-last layout, instance norms computed per sample by the batch-norm kernel
(:class:`custom.networks.ChannelsLastInstanceNorm`) and BasicUNet's zero-width pads skipped.

Tolerances, relative to the size of what is compared (the whole loss, the whole gradient vector of a network):
float64 1e-9, where only the arithmetic is left: the two steps compute the same function. fp32 1e-2: PyTorch's
channels-last batch-norm kernel sums in another order than its NCHW instance norm, and on this small network (a 4 x 4
bottleneck) that gives 1e-5 of the generator's gradient with two threads and 1e-3 to 6e-3 with one (the plain fp32
step is within 2e-6 of float64). bf16 autocast 3e-2: the plain step keeps the norms' outputs in fp32 until the next
convolution casts them, the bundle's step rounds them to bf16 once. The gradients of conv biases directly before a
norm are mathematically 0 (the norm removes any constant), so they are compared as part of the whole vector, not one
by one.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import ROOT
from monai.bundle import ConfigParser
from monai.networks.blocks import UnetResBlock
from monai.networks.nets import PatchDiscriminator
from torch.utils._python_dispatch import TorchDispatchMode

from custom.bundles import flat_config
from custom.networks import (
    ChannelsLastInstanceNorm,
    Generator,
    MultiScaleDiscriminator,
    channels_last_norm,
    for_training,
)
from custom.networks.channels_last_norm import use_channels_last_instance_norm

TOLERANCE = {"fp64": 1e-9, "fp32": 1e-2, "bf16": 3e-2}


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-12)).item()


def _gradient_vector(network: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.double().flatten() for p in network.parameters()])


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("affine", [False, True])
def test_channels_last_instance_norm_is_instance_norm(dims, affine):
    torch.manual_seed(0)
    reference = (torch.nn.InstanceNorm2d if dims == 2 else torch.nn.InstanceNorm3d)(6, affine=affine)
    if affine:
        with torch.no_grad():
            reference.weight.uniform_(0.5, 1.5)
            reference.bias.uniform_(-0.5, 0.5)
    ours = ChannelsLastInstanceNorm.from_instance_norm(copy.deepcopy(reference))
    shape = (3, 6, 10, 12) if dims == 2 else (3, 6, 6, 8, 5)
    layout = torch.channels_last if dims == 2 else torch.channels_last_3d
    x = (torch.randn(shape) * 3 + 2).requires_grad_()
    x_cl = x.detach().contiguous(memory_format=layout).requires_grad_()
    expected, got = reference(x), ours(x_cl)
    assert got.is_contiguous(memory_format=layout)  # no conversion back to NCHW
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    weights = torch.randn(shape)
    (expected * weights).sum().backward()
    (got * weights).sum().backward()
    torch.testing.assert_close(x_cl.grad, x.grad, atol=1e-4, rtol=1e-4)
    if affine:
        torch.testing.assert_close(ours.weight.grad, reference.weight.grad, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours.bias.grad, reference.bias.grad, atol=1e-4, rtol=1e-4)
    assert set(ours.state_dict()) == set(reference.state_dict())  # checkpoints load either way


def test_channels_last_instance_norm_keeps_bf16_under_autocast_and_checks_its_input():
    norm = ChannelsLastInstanceNorm(4, affine=True)
    x = torch.randn(2, 4, 8, 8).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = norm(x)
    assert y.dtype == torch.bfloat16  # PyTorch's instance norm would return float32 here
    torch.testing.assert_close(y.float(), torch.nn.functional.instance_norm(x.float()), atol=3e-2, rtol=3e-2)
    with pytest.raises(ValueError, match=r"expected \(N, 4"):
        norm(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="running statistics"):
        ChannelsLastInstanceNorm.from_instance_norm(torch.nn.InstanceNorm2d(4, track_running_stats=True))


def _pix2pix_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    """pix2pix_ngf's generator and discriminator as the bundle defines them, at a small width."""
    parser = ConfigParser(flat_config(ROOT / "bundles" / "pix2pix_ngf" / "configs" / "train.json"))
    parser["network_def"]["features"] = [8, 8, 16, 16, 32, 8]
    parser["discriminator_def"]["channels"] = 8
    torch.manual_seed(0)
    return parser.get_parsed_content("network_def"), parser.get_parsed_content("discriminator_def")


def _step(generator, discriminator, mr, ct, precision):
    """One pix2pix step's losses and gradients: D on real and synthetic pairs, then G (L1 + LSGAN through D)."""
    generator.zero_grad(set_to_none=True)
    discriminator.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        fake = generator(mr)
        real_out = discriminator(torch.cat([mr, ct], 1))
        fake_out = discriminator(torch.cat([mr, fake.detach()], 1))
    loss_d = sum(
        (r[-1].to(ct.dtype) - 1).pow(2).mean() + f[-1].to(ct.dtype).pow(2).mean() for r, f in zip(real_out, fake_out)
    )
    loss_d.backward()
    grad_d = _gradient_vector(discriminator)
    discriminator.requires_grad_(False)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        adversarial = discriminator(torch.cat([mr, fake], 1))
    loss_g = (fake.to(ct.dtype) - ct).abs().mean() * 100 + sum(
        (o[-1].to(ct.dtype) - 1).pow(2).mean() for o in adversarial
    )
    loss_g.backward()
    discriminator.requires_grad_(True)
    return loss_d.detach(), loss_g.detach(), grad_d, _gradient_vector(generator)


@pytest.mark.parametrize("precision", ["fp64", "fp32", "bf16"])
def test_the_bundle_step_gives_the_plain_steps_losses_and_gradients(precision):
    from custom.networks.precision import native_bf16

    if precision == "bf16" and not native_bf16("cpu"):
        # oneDNN emulates bf16 on such a CPU (AVX2 only) with other rounding (8.5e-2 of the generator's gradient on a
        # 2-core AMD EPYC); no recipe trains in it there (precision auto picks fp32)
        pytest.skip("bf16 is emulated on this CPU")
    plain_g, plain_d = _pix2pix_pair()
    dtype = torch.float64 if precision == "fp64" else torch.float32
    plain_g.to(dtype)
    plain_d.to(dtype)
    fast_g = for_training(copy.deepcopy(plain_g), "cpu", channels_last=True)
    fast_d = for_training(copy.deepcopy(plain_d), "cpu", channels_last=True)
    assert any(isinstance(m, ChannelsLastInstanceNorm) for m in fast_g.modules())
    assert any(isinstance(m, ChannelsLastInstanceNorm) for m in fast_d.modules())
    assert next(fast_g.parameters()).is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)
    mr, ct = (torch.rand(2, 1, 64, 64, dtype=dtype) * 2 - 1 for _ in range(2))
    plain = _step(plain_g, plain_d, mr, ct, precision)
    fast = _step(fast_g, fast_d, mr, ct, precision)
    tolerance = TOLERANCE[precision]
    for name, a, b in zip(("loss_d", "loss_g", "D gradients", "G gradients"), fast, plain):
        assert _relative(a, b) < tolerance, f"{name} differs by {_relative(a, b):.2e} ({precision})"
    # the checkpoint of the bundle's step loads strictly into the plain network_def, with the same values
    plain_g.load_state_dict(fast_g.state_dict(), strict=True)
    plain_d.load_state_dict(fast_d.state_dict(), strict=True)


@pytest.mark.parametrize("size", [(64, 48), (50, 38)])
def test_skipped_pads_give_the_same_network_for_even_and_odd_sizes(size):
    torch.manual_seed(0)
    plain = Generator("BasicUNet", spatial_dims=2, in_channels=1, out_channels=1, features=[4, 4, 8, 8, 8, 4])
    fast = for_training(copy.deepcopy(plain), "cpu", channels_last=False)
    x = torch.rand(2, 1, *size)
    torch.testing.assert_close(fast(x), plain(x), atol=1e-6, rtol=1e-6)  # odd sizes: MONAI's pad still runs


def test_3d_and_patch_discriminators_match_with_channels_last():
    """SwinUNETR's convolutional blocks (``UnetResBlock``, 3D instance norm), the 2D PatchGAN and the 3D multi-scale
    discriminator; in float64, so that what is left is the arithmetic, not rounding."""
    torch.manual_seed(0)
    swin = torch.nn.Sequential(UnetResBlock(3, 1, 6, 3, 1, "instance"), UnetResBlock(3, 6, 6, 3, 2, "instance"))
    patch = PatchDiscriminator(spatial_dims=2, num_layers_d=2, channels=8, in_channels=2, norm="INSTANCE")
    multiscale = MultiScaleDiscriminator(spatial_dims=3, in_channels=2, channels=8, num_layers_d=2, num_d=1)
    for plain, shape in ((swin, (2, 1, 16, 16, 8)), (patch, (2, 2, 64, 64)), (multiscale, (1, 2, 32, 32, 32))):
        plain.double()
        fast = for_training(copy.deepcopy(plain), "cpu", channels_last=True)
        x = torch.rand(shape, dtype=torch.float64)
        expected, got = plain(x), fast(x)
        for a, b in zip(_flat(got), _flat(expected)):
            assert _relative(a, b) < 1e-9
        sum(t.float().mean() for t in _flat(expected)).backward()
        sum(t.float().mean() for t in _flat(got)).backward()
        assert _relative(_gradient_vector(fast), _gradient_vector(plain)) < 1e-9


class _RecordOps(TorchDispatchMode):
    """Calls ``record(func, args)`` for every ATen op run while active (which layouts and dtypes kernels receive)."""

    def __init__(self, record) -> None:
        super().__init__()
        self.record = record

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.record(func, args)
        return func(*args, **(kwargs or {}))


def _flat(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for item in output for t in _flat(item)]


def test_channels_last_must_be_a_switch():
    with pytest.raises(ValueError, match="channels_last='yes': expected true or false"):
        for_training(torch.nn.Conv2d(1, 1, 3), "cpu", channels_last="yes")
    # what a command line passes (--channels_last false) is understood
    plain = for_training(torch.nn.Conv2d(2, 4, 3), "cpu", channels_last="false")
    assert not plain.weight.is_contiguous(memory_format=torch.channels_last)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.InstanceNorm2d(2))
    assert isinstance(use_channels_last_instance_norm(module)[1], ChannelsLastInstanceNorm)


def test_a_one_channel_input_enters_in_channels_last_strides():
    """A one-channel image is NCHW- and channels-last-contiguous at once; PyTorch treats it as NCHW, so without the
    bundle step's input hook the first convolution (and the skip connection taken from it) would come out NCHW."""
    generator, _ = _pix2pix_pair()
    fast = for_training(generator, "cpu", channels_last=True)
    first_conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv2d))
    seen = []
    first_conv.register_forward_hook(lambda module, args, output: seen.append(output))
    fast(torch.rand(2, 1, 32, 32))
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and seen[0].stride(1) == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("channels", [5, 16])
@pytest.mark.parametrize("multiple", [16, 1])
def test_per_sample_norm_writes_the_concatenated_per_sample_batch_norms_bit_for_bit(
    dtype, affine, dims, channels, multiple, monkeypatch
):
    """The norm's forward writes each sample into one tensor instead of concatenating per-sample results; the values
    are the concatenation's exactly (the same kernels, called the same way): with the AVX512 rule (multiple 16) the
    channels-last kernel for 16 channels and the NCHW kernel for 5 (PyTorch's channels-last kernel is slow there for
    channel counts that are not a multiple of 16), with the AVX2 rule (multiple 1) the channels-last kernel for both;
    the output and the gradient stay channels-last either way."""
    monkeypatch.setattr(channels_last_norm, "CPU_CHANNELS_LAST_KERNEL_MULTIPLE", multiple)
    torch.manual_seed(0)
    norm = ChannelsLastInstanceNorm(channels, affine=affine)
    if affine:
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    shape = (3, channels, 12, 10) if dims == 2 else (3, channels, 6, 8, 4)
    layout = torch.channels_last if dims == 2 else torch.channels_last_3d
    kernel_layout = layout if channels % multiple == 0 else torch.contiguous_format
    assert channels_last_norm.runs_nchw_kernel(torch.empty(shape)) == (channels % multiple != 0)
    x = (torch.randn(shape) * 2 + 1).to(dtype).contiguous(memory_format=layout)
    weights = torch.randn(shape).to(dtype).contiguous(memory_format=layout)  # as a convolution's gradient
    x_ours, x_cat = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = norm(x_ours)
    (ours * weights).sum().backward()
    ours_params = [p.grad.clone() for p in norm.parameters()]
    norm.zero_grad(set_to_none=True)
    cat = torch.cat(
        [
            torch.nn.functional.batch_norm(s, None, None, norm.weight, norm.bias, True, 0.0, norm.eps)
            for s in x_cat.contiguous(memory_format=kernel_layout).split(1)
        ]
    )
    (cat * weights.contiguous(memory_format=kernel_layout)).sum().backward()
    assert ours.dtype == dtype and ours.is_contiguous(memory_format=layout)
    assert x_ours.grad.is_contiguous(memory_format=layout)
    assert torch.equal(ours, cat)
    assert torch.equal(x_ours.grad, x_cat.grad)
    for a, b in zip(ours_params, [p.grad for p in norm.parameters()]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)  # summed over samples in another order


def test_upsampling_gets_its_gradient_channels_last_and_the_same_values():
    """In a U-Net decoder the gradient of the upsampled map is a slice of the concatenation's gradient; the training
    network hands it on channels-last (PyTorch's bilinear backward would otherwise run its NCHW kernel)."""
    layouts = []

    def record(func, args):
        if func is torch.ops.aten.upsample_bilinear2d_backward.default:
            layouts.append(args[0].is_contiguous(memory_format=torch.channels_last))

    generator, _ = _pix2pix_pair()
    plain = copy.deepcopy(generator).double()
    fast = for_training(generator, "cpu", channels_last=True).double()
    x = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    weights = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    with _RecordOps(record):
        (plain(x) * weights).sum().backward()
    assert layouts == [False] * 4  # the plain network: NCHW (here, slices of the concatenation's gradient)
    layouts.clear()
    with _RecordOps(record):
        (fast(x) * weights).sum().backward()
    assert layouts == [True] * 4
    assert _relative(_gradient_vector(fast), _gradient_vector(plain)) < 1e-9


@pytest.mark.parametrize("bundle", ["pix2pix_ngf", "cyclegan_cc", "swin_pix2pix_3d", "mask2ct_lung"])
def test_the_optimizers_are_fused_on_a_cpu(bundle):
    """PyTorch's fused Adam/AdamW (one kernel for all parameters, CPU and CUDA): the same update to float rounding;
    ``--gan#g_optimizer#fused false`` gives the per-parameter loop."""
    parser = ConfigParser(flat_config(ROOT / "bundles" / bundle / "configs" / "train.json"))
    parser["device"] = "$torch.device('cpu')"
    for name in ("g_optimizer", "d_optimizer"):
        assert parser.get_parsed_content(f"gan#{name}").defaults["fused"] is True


def test_reflect_padded_convolutions_pad_in_bf16_with_the_same_values():
    """CPU autocast runs 1D/2D reflection pads in float32 (a cast each side, forward and backward); the training network
    pads in the input's dtype, which copies the same values (cyclegan_cc's ResNet generator pads this way)."""
    from custom.networks import ResNetGenerator

    pad_dtypes = []

    def record(func, args):
        if "reflection_pad" in str(func) and "backward" not in str(func):
            pad_dtypes.append(args[0].dtype)

    torch.manual_seed(0)
    plain = ResNetGenerator(spatial_dims=2, in_channels=1, out_channels=1, channels=4, num_blocks=1)
    fast = for_training(copy.deepcopy(plain), "cpu", channels_last=True)
    x = torch.rand(2, 1, 16, 16)
    outputs = []
    for network in (plain, fast):
        pad_dtypes.clear()
        with _RecordOps(record), torch.autocast("cpu", dtype=torch.bfloat16):
            outputs.append(network(x))
        outputs[-1].float().sum().backward()
        outputs.append(list(pad_dtypes))
    plain_out, plain_pads, fast_out, fast_pads = outputs
    assert set(plain_pads) == {torch.float32}  # autocast's choice for the plain network
    assert fast_pads[0] == torch.float32 and set(fast_pads[1:]) == {torch.bfloat16}  # the image enters in fp32
    torch.testing.assert_close(fast_out.float(), plain_out.float(), atol=0, rtol=0)
    assert _relative(_gradient_vector(fast), _gradient_vector(plain)) < 3e-2  # bf16 norms, as the pix2pix step
