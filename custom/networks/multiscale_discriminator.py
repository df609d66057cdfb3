"""Multi-scale PatchGAN discriminator as in pix2pixHD: identical PatchGANs applied to an image pyramid.

References:
    T.-C. Wang, M.-Y. Liu, J.-Y. Zhu, A. Tao, J. Kautz, B. Catanzaro, "High-Resolution Image Synthesis and Semantic
    Manipulation with Conditional GANs", CVPR 2018 (pix2pixHD), sec. 3.2 "multi-scale discriminators".
    P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros, "Image-to-Image Translation with Conditional Adversarial Networks",
    CVPR 2017 (pix2pix, the N-layer PatchGAN).

MONAI's ``MultiScalePatchDiscriminator`` differs: it feeds the same full-resolution input to every scale and makes the
k-th discriminator deeper (``num_layers_d * (k + 1)`` layers). Here every scale has the same architecture (a MONAI
``PatchDiscriminator``) and the k-th one sees the input average-pooled k times (kernel 3, stride 2, padding 1,
``count_include_pad=False``), which is the pix2pixHD design: the coarse scales see more context with the same
receptive field in pixels, for the same number of parameters per scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.layers import Act
from monai.networks.nets import PatchDiscriminator

__all__ = ["MultiScaleDiscriminator"]


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _pool_out(size: int) -> int:
    return _conv_out(size, 3, 2, 1)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"MultiScaleDiscriminator: {name} must be an integer >= {minimum}, got {value!r}")
    return value


class MultiScaleDiscriminator(nn.Module):
    """pix2pixHD multi-scale PatchGAN: ``num_d`` identical N-layer PatchGANs on an average-pooled image pyramid.

    Scale k (k = 0 .. num_d - 1) is a MONAI ``PatchDiscriminator`` applied to the input average-pooled k times
    (``AvgPool{2,3}d(kernel_size=3, stride=2, padding=1, count_include_pad=False)``), so each pooling halves the
    size (rounding up) and the k-th logits map is about ``input / 2**k`` times the size of the first one.

    Each PatchGAN is: a stride-2 conv (no norm) + LeakyReLU(0.2); ``num_layers_d`` conv + norm + LeakyReLU blocks,
    all stride 2 except the last (stride 1), channels doubling from ``2 * channels``; a final conv to
    ``out_channels`` logits (no activation). With kernel 4 and padding 1, a spatial size ``n`` becomes about
    ``n / 2**num_layers_d - 2`` at the output (the two stride-1 kernel-4 convs remove one pixel each).

    Minimum input size: every feature map at every scale must be non-empty, and the maps fed to a normalisation
    layer must be at least 2 pixels along every axis (a slightly conservative rule: instance norm, and batch norm
    with batch size 1, fail in training mode on a single pixel), see :meth:`min_input_size`. With the defaults
    (kernel 4, ``num_layers_d=3``) the minimum is 24 pixels per axis for ``num_d=1``, 47 for ``num_d=2`` and 93 for
    ``num_d=3``; with ``num_layers_d=2``, 23 for ``num_d=2``. 64 x 64 gives logits 6 x 6 and 2 x 2 at the two scales
    of the default, 256 x 256 gives 30 x 30 and 14 x 14. ``forward`` checks this and raises a ``ValueError``
    naming the minimum; :meth:`output_shapes` gives the logits shapes for any input shape.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels; for a conditional discriminator on (MR, CT) pairs concatenated on the
            channel axis this is 2.
        channels: number of filters of the first conv (doubled in each following block). Defaults to 64.
        num_layers_d: number of conv + norm + activation blocks after the first conv in each PatchGAN (pix2pix's
            ``n_layers``). Defaults to 3 (the 70 x 70 PatchGAN).
        num_d: number of scales (discriminators). Defaults to 2.
        out_channels: logits channels. Defaults to 1.
        kernel_size: kernel size of all convs except possibly the last. Defaults to 4.
        activation: activation of the hidden blocks, MONAI style. Defaults to LeakyReLU(0.2).
        norm: normalisation of the hidden blocks, MONAI style (``"INSTANCE"``, ``"BATCH"``, or a tuple with
            arguments). Defaults to ``"INSTANCE"`` as in pix2pixHD (batch norm statistics are poor with the small
            batches of 3D medical training).
        bias: bias in the normalised convs (redundant before a norm layer). Defaults to False.
        dropout: dropout probability in the hidden blocks. Defaults to 0.
        last_conv_kernel_size: kernel of the final conv; None (default) uses ``kernel_size`` as in pix2pix.
        padding: padding of the hidden convs; None (default) uses ``(kernel_size - 1) // 2``.

    Returns of ``forward``: a list over scales (full resolution first) of the lists returned by MONAI's
    ``PatchDiscriminator.forward``: the intermediate feature maps, then the logits last. For MONAI's
    ``PatchAdversarialLoss`` pass ``[out[-1] for out in result]``; for
    :func:`custom.losses.feature_matching_loss` pass ``result`` itself.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        channels: int = 64,
        num_layers_d: int = 3,
        num_d: int = 2,
        out_channels: int = 1,
        kernel_size: int = 4,
        activation: str | tuple = (Act.LEAKYRELU, {"negative_slope": 0.2}),
        norm: str | tuple = "INSTANCE",
        bias: bool = False,
        dropout: float = 0.0,
        last_conv_kernel_size: int | None = None,
        padding: int | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
            raise ValueError(f"MultiScaleDiscriminator: spatial_dims must be 2 or 3, got {spatial_dims!r}")
        _check_int("in_channels", in_channels, 1)
        _check_int("channels", channels, 1)
        _check_int("num_layers_d", num_layers_d, 1)
        _check_int("num_d", num_d, 1)
        _check_int("out_channels", out_channels, 1)
        _check_int("kernel_size", kernel_size, 1)
        if last_conv_kernel_size is None:
            last_conv_kernel_size = kernel_size
        _check_int("last_conv_kernel_size", last_conv_kernel_size, 1)
        if padding is None:
            padding = (kernel_size - 1) // 2
        _check_int("padding", padding, 0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiScaleDiscriminator: dropout must be a number in [0, 1), got {dropout!r}")

        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.num_d = num_d
        self.num_layers_d = num_layers_d
        self.kernel_size = kernel_size
        self.last_conv_kernel_size = last_conv_kernel_size
        self.padding = padding

        self.discriminators = nn.ModuleList(
            PatchDiscriminator(
                spatial_dims=spatial_dims,
                channels=channels,
                in_channels=in_channels,
                out_channels=out_channels,
                num_layers_d=num_layers_d,
                kernel_size=kernel_size,
                activation=activation,
                norm=norm,
                bias=bias,
                padding=padding,
                dropout=dropout,
                last_conv_kernel_size=last_conv_kernel_size,
            )
            for _ in range(num_d)
        )
        pool = nn.AvgPool2d if spatial_dims == 2 else nn.AvgPool3d
        self.downsample = pool(kernel_size=3, stride=2, padding=1, count_include_pad=False)

    def _feature_sizes(self, size: int) -> list[int]:
        """Sizes along one axis of the feature maps of one PatchGAN for input size ``size`` (logits last)."""
        sizes = [_conv_out(size, self.kernel_size, 2, self.padding)]
        for layer in range(self.num_layers_d):
            stride = 1 if layer == self.num_layers_d - 1 else 2
            sizes.append(_conv_out(sizes[-1], self.kernel_size, stride, self.padding))
        last_padding = (self.last_conv_kernel_size - 1) // 2
        sizes.append(_conv_out(sizes[-1], self.last_conv_kernel_size, 1, last_padding))
        return sizes

    def _axis_ok(self, size: int) -> bool:
        for _ in range(self.num_d):
            sizes = self._feature_sizes(size)
            # every map non-empty; the normalised maps (all but the first and the logits) need >= 2 pixels
            if min(sizes) < 1 or min(sizes[1:-1]) < 2:
                return False
            size = _pool_out(size)
        return True

    def min_input_size(self) -> int:
        """Smallest spatial size per axis accepted by every scale (see the class docstring)."""
        size = 1
        while not self._axis_ok(size):
            size += 1
        return size

    def output_shapes(self, spatial_shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Spatial shapes of the logits at each scale for an input of spatial shape ``spatial_shape``."""
        if len(spatial_shape) != self.spatial_dims:
            raise ValueError(
                f"MultiScaleDiscriminator: expected {self.spatial_dims} spatial sizes, got {tuple(spatial_shape)}"
            )
        shapes = []
        current = [int(s) for s in spatial_shape]
        for _ in range(self.num_d):
            shapes.append(tuple(self._feature_sizes(s)[-1] for s in current))
            current = [_pool_out(s) for s in current]
        return shapes

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """
        Args:
            x: (B, in_channels, *spatial) tensor, e.g. an (MR, CT) pair concatenated on the channel axis.

        Returns:
            ``num_d`` lists (full resolution first), each the intermediate feature maps then the logits.
        """
        if not isinstance(x, torch.Tensor) or x.ndim != self.spatial_dims + 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"MultiScaleDiscriminator: expected a (B, C, *spatial) tensor with {self.spatial_dims} spatial "
                f"dims, got {shape}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"MultiScaleDiscriminator: expected {self.in_channels} input channels, got {x.shape[1]} "
                f"(shape {tuple(x.shape)})"
            )
        if not all(self._axis_ok(int(s)) for s in x.shape[2:]):
            raise ValueError(
                f"MultiScaleDiscriminator: input spatial shape {tuple(x.shape[2:])} is too small for "
                f"num_d={self.num_d}, num_layers_d={self.num_layers_d}, kernel_size={self.kernel_size}: every axis "
                f"must be >= {self.min_input_size()}"
            )
        outputs = []
        for k, disc in enumerate(self.discriminators):
            if k > 0:
                x = self.downsample(x)
            outputs.append(disc(x))
        return outputs
