"""The ResNet image-to-image generator of CycleGAN: down-sample, residual blocks, up-sample, no skip connections.

References:
    J. Johnson, A. Alahi, L. Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
    ECCV 2016 (the architecture); J.-Y. Zhu, T. Park, P. Isola, A. A. Efros, "Unpaired Image-to-Image Translation
    using Cycle-Consistent Adversarial Networks", ICCV 2017, appendix 7.2 (``c7s1-64, d128, d256, R256 x 9, u128,
    u64, c7s1-3``, reflection padding, instance norm).

    x -> c7s1-C -> d(2C) -> ... -> d(2^n C) -> R(2^n C) x B -> u(2^(n-1) C) -> ... -> u(C) -> c7s1-out

``c7s1-k``: 7-pixel convolution, stride 1, k channels, norm, ReLU; ``dk``: 3-pixel convolution, stride 2; ``R``: two
3-pixel convolutions with a residual connection, ``y = x + norm(conv(relu(norm(conv(x)))))``; ``uk``: up-sampling by
2 then a 3-pixel convolution. Convolutions with odd kernels pad by reflection, as in the paper.

Why it is here: for unpaired MR -> CT, a U-Net's full-resolution skip connections make copying the input the easiest
way to satisfy the cycle and identity terms (seen on AANLIB: a T2-like "sCT"); this generator has no path that
bypasses its bottleneck. MONAI has ResNets for classification and U-Nets, not this. Differences from the paper,
each an option: ``upsample="nontrainable"`` (bilinear resize then convolution, no checkerboard: Odena et al.,
Distill 2016) is the default, ``"deconv"`` gives the paper's transposed convolutions; the output activation is
``custom.networks.Generator``'s (tanh), not part of this module.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.layers.factories import Act, Conv, Norm

__all__ = ["ResNetGenerator"]

UPSAMPLE_MODES = ("nontrainable", "deconv")


def _reflect_conv(spatial_dims: int, in_channels: int, out_channels: int, kernel: int) -> nn.Module:
    return Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel, padding=kernel // 2, padding_mode="reflect")


def _norm(spatial_dims: int, norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return Norm[Norm.INSTANCE, spatial_dims](channels, affine=True)
    return Norm[Norm.BATCH, spatial_dims](channels)


class ResidualBlock(nn.Module):
    """``y = x + norm(conv(relu(norm(conv(x)))))`` with 3-pixel reflect-padded convolutions."""

    def __init__(self, spatial_dims: int, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            _reflect_conv(spatial_dims, channels, channels, 3),
            _norm(spatial_dims, norm, channels),
            Act["relu"](),
            _reflect_conv(spatial_dims, channels, channels, 3),
            _norm(spatial_dims, norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """CycleGAN's ResNet generator (see the module docstring), for 2D or 3D images.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (1 for an MR).
        out_channels: output channels (1 for a CT).
        channels: channels of the first convolution (the paper: 64); doubled at each down-sampling.
        num_downsamples: stride-2 stages (the paper: 2); input sizes must be divisible by ``2**num_downsamples``.
        num_blocks: residual blocks at the bottom (the paper: 9 for 256 x 256, 6 for 128 x 128).
        norm: ``"instance"`` (the paper) or ``"batch"``.
        upsample: ``"nontrainable"`` (bilinear/trilinear resize + convolution) or ``"deconv"`` (transposed
            convolution, the paper).

    The output is the last convolution's, without activation (``custom.networks.Generator`` adds tanh).
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: int = 64,
        num_downsamples: int = 2,
        num_blocks: int = 9,
        norm: str = "instance",
        upsample: str = "nontrainable",
    ):
        super().__init__()
        for name, value, minimum in (
            ("spatial_dims", spatial_dims, 2),
            ("in_channels", in_channels, 1),
            ("out_channels", out_channels, 1),
            ("channels", channels, 1),
            ("num_downsamples", num_downsamples, 0),
            ("num_blocks", num_blocks, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"ResNetGenerator: {name} must be an integer >= {minimum}, got {value!r}")
        if spatial_dims > 3:
            raise ValueError(f"ResNetGenerator: spatial_dims must be 2 or 3, got {spatial_dims}")
        if norm not in ("instance", "batch"):
            raise ValueError(f"ResNetGenerator: norm must be 'instance' or 'batch', got {norm!r}")
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"ResNetGenerator: upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.factor = 2**num_downsamples
        d, relu = spatial_dims, Act["relu"]
        layers: list[nn.Module] = [_reflect_conv(d, in_channels, channels, 7), _norm(d, norm, channels), relu()]
        width = channels
        for _ in range(num_downsamples):
            conv = Conv[Conv.CONV, d](width, 2 * width, kernel_size=3, stride=2, padding=1)
            layers += [conv, _norm(d, norm, 2 * width), relu()]
            width *= 2
        layers += [ResidualBlock(d, width, norm) for _ in range(num_blocks)]
        for _ in range(num_downsamples):
            if upsample == "deconv":
                up = [Conv[Conv.CONVTRANS, d](width, width // 2, 3, stride=2, padding=1, output_padding=1)]
            else:
                mode = "bilinear" if d == 2 else "trilinear"
                up = [
                    nn.Upsample(scale_factor=2, mode=mode, align_corners=False),
                    _reflect_conv(d, width, width // 2, 3),
                ]
            layers += [*up, _norm(d, norm, width // 2), relu()]
            width //= 2
        layers.append(_reflect_conv(d, width, out_channels, 7))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(size % self.factor for size in x.shape[2:]):
            raise ValueError(
                f"ResNetGenerator: input size {tuple(x.shape[2:])} must be divisible by {self.factor} "
                "(2 ** num_downsamples); pad it or change the patch size"
            )
        return self.model(x)
