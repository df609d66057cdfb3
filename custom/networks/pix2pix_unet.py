"""The U-Net generator of pix2pix: stride-2 4x4 convolutions down, transposed convolutions up, skips at every level.

Reference: P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017, sec. 3.2.1 and appendix 6.1.1 (the "U-Net" generator: encoder C64-C128-C256-C512-..., decoder
CD512-CD512-CD512-C512-..., skips between mirrored layers).

With ``L = len(channels)`` levels, channels ``c_0 .. c_{L-1}`` and an input of ``n`` pixels per axis (a multiple of
``2**L``)::

    encoder   e_0 = act(conv_s2(x))                          c_0 channels, n / 2        (no normalisation)
              e_k = act(norm(conv_s2(e_{k-1})))              c_k channels, n / 2**(k+1), k = 1 .. L-1
    decoder   u_{L-1} = up(e_{L-1}) -> c_{L-2}                then concatenated with e_{L-2}
              u_k     = up(cat(u_{k+1}, e_k)) -> c_{k-1}      k = L-2 .. 1, concatenated with e_{k-1}
              y = x2(cat(u_1, e_0)) -> out_channels          n pixels                   (no norm, no activation)
    up(z)     = up_act(dropout(norm(x2(z))))                 dropout only in the first ``dropout_blocks`` blocks

The encoder convolutions are 4x4 (``kernel_size``) with stride 2 and padding 1, so every level halves the size
exactly. ``x2``, the decoder's doubling, is chosen by ``upsample``:

- ``"transposed"``: a 4x4 stride-2 transposed convolution, as published in pix2pix;
- ``"nearest"`` (default) or ``"linear"``: a fixed nearest-neighbour or bi(tri)linear x2 resize, then a 3x3
  convolution ("resize-convolution", Odena, Dumoulin, Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016,
  who recommend the nearest-neighbour resize). A transposed convolution paints a lattice of period 2 into the output
  (the "checkerboard" artefact, visible before any training); the resize does not.

The defaults are the 128 x 128 generator of the ``mask2ct_lung`` bundle: encoder 1 -> 64 -> 128 -> 256 -> 512 -> 512
-> 512 (the innermost map is 2 x 2), instance norm from the second level, LeakyReLU(0.2) down, ReLU up, dropout 0.5
in the three innermost decoder blocks. The output activation (``tanh``) is ``custom.networks.Generator``'s, so this
network is used as its backbone::

    "network_def": {"_target_": "custom.networks.Generator", "backbone": "custom.networks.Pix2PixUNet",
                    "output_act": "tanh", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
                    "channels": [64, 128, 256, 512, 512, 512], "upsample": "nearest"}

Built from MONAI blocks: ``Convolution`` (a conv followed by MONAI's ``ADN``: norm, dropout, activation) and
``UpSample`` (the resize, then that convolution); weights are drawn from N(0, 0.02) as in pix2pix (MONAI
``normal_init``). Dropout follows the network's mode: on in training, off in ``eval()`` (pix2pix also kept it on at
test time as a noise source; MONAI's evaluators call ``eval()``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import Convolution, UpSample
from monai.networks.layers.factories import Act
from monai.networks.utils import normal_init
from torch import nn

__all__ = ["Pix2PixUNet", "UPSAMPLE_MODES"]

UPSAMPLE_MODES = ("nearest", "linear", "transposed")


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Pix2PixUNet: {name} must be a positive integer, got {value!r}.")
    return value


class Pix2PixUNet(nn.Module):
    """pix2pix U-Net generator (see the module docstring for the layers).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (1: a lung mask).
        out_channels: output channels (1: a CT slice).
        channels: feature channels of the encoder levels, from the first (full resolution / 2) to the innermost;
            ``len(channels)`` is the number of levels L (at least 2) and the input must be a multiple of ``2**L``.
        kernel_size: kernel of the stride-2 convolutions of the encoder, and of the decoder's with ``"transposed"``
            (4 in pix2pix; with padding ``kernel_size / 2 - 1`` the size halves or doubles exactly for an even kernel).
        norm: MONAI normalisation of every level but the first and of the decoder blocks (``"INSTANCE"``).
        act: MONAI activation of the encoder (LeakyReLU with slope 0.2).
        up_act: MONAI activation of the decoder blocks (ReLU).
        dropout: dropout probability of the first ``dropout_blocks`` decoder blocks.
        dropout_blocks: how many decoder blocks, from the innermost, have dropout (0 to L - 1).
        upsample: the decoder's x2, ``"nearest"``, ``"linear"`` (resize, then a 3x3 convolution) or ``"transposed"``
            (pix2pix's 4x4 stride-2 transposed convolution, prone to checkerboard artefacts).
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (64, 128, 256, 512, 512, 512),
        kernel_size: int = 4,
        norm: str | tuple = "INSTANCE",
        act: str | tuple = (Act.LEAKYRELU, {"negative_slope": 0.2}),
        up_act: str | tuple = Act.RELU,
        dropout: float = 0.5,
        dropout_blocks: int = 3,
        upsample: str = "nearest",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
            raise ValueError(f"Pix2PixUNet: spatial_dims must be 2 or 3, got {spatial_dims!r}.")
        in_channels = _positive_int("in_channels", in_channels)
        out_channels = _positive_int("out_channels", out_channels)
        channels = [_positive_int("channels[*]", c) for c in channels]
        if len(channels) < 2:
            raise ValueError(f"Pix2PixUNet: channels must name at least 2 levels, got {channels}.")
        if _positive_int("kernel_size", kernel_size) % 2:
            raise ValueError(f"Pix2PixUNet: kernel_size must be even (stride 2, padding 1), got {kernel_size}.")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"Pix2PixUNet: dropout must be a number in [0, 1), got {dropout!r}.")
        levels = len(channels)
        if isinstance(dropout_blocks, bool) or not isinstance(dropout_blocks, int) or not 0 <= dropout_blocks < levels:
            raise ValueError(
                f"Pix2PixUNet: dropout_blocks must be an integer from 0 to {levels - 1} (the decoder blocks of "
                f"{levels} levels), got {dropout_blocks!r}."
            )
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"Pix2PixUNet: upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}.")
        self.spatial_dims, self.levels, self.channels = spatial_dims, levels, channels
        padding = (kernel_size - 2) // 2  # (n + 2p - k) / 2 + 1 = n / 2 for stride 2

        def conv(c_in: int, c_out: int, stride: int, kernel: int, pad: int, transposed: bool = False, **adn):
            return Convolution(
                spatial_dims,
                c_in,
                c_out,
                strides=stride,
                kernel_size=kernel,
                padding=pad,
                output_padding=0 if transposed else None,
                is_transposed=transposed,
                adn_ordering="NDA",
                **adn,
            )

        def up(c_in: int, c_out: int, **adn) -> nn.Module:
            """x2 then ``adn``: a transposed convolution, or a resize followed by a 3x3 convolution."""
            if upsample == "transposed":
                return conv(c_in, c_out, 2, kernel_size, padding, transposed=True, **adn)
            return UpSample(
                spatial_dims,
                c_in,
                c_in,
                scale_factor=2,
                mode="nontrainable",
                pre_conv=None,
                post_conv=conv(c_in, c_out, 1, 3, 1, **adn),
                interp_mode=upsample,
                align_corners=None if upsample == "nearest" else False,
            )

        self.down = nn.ModuleList(
            conv(c_in, c_out, 2, kernel_size, padding, act=act, norm=None if k == 0 else norm, dropout=None)
            for k, (c_in, c_out) in enumerate(zip([in_channels] + channels[:-1], channels))
        )
        # decoder block i (i = 0: innermost) maps level k = L-1-i to the channels of level k-1
        self.up = nn.ModuleList()
        for i, k in enumerate(range(levels - 1, 0, -1)):
            c_in = channels[k] if k == levels - 1 else 2 * channels[k]
            drop = dropout if i < dropout_blocks and dropout > 0 else None
            self.up.append(up(c_in, channels[k - 1], act=up_act, norm=norm, dropout=drop))
        self.out = up(2 * channels[0], out_channels, conv_only=True)
        self.apply(normal_init)

    @property
    def size_multiple(self) -> int:
        """Every spatial size must be a multiple of this (``2**L``)."""
        return 1 << self.levels

    @torch.jit.unused
    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != self.spatial_dims + 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"Pix2PixUNet: expected a (B, C, *spatial) tensor of {self.spatial_dims}D, got {shape}.")
        m = self.size_multiple
        if any(s % m or s < 2 * m for s in x.shape[2:]):
            raise ValueError(
                f"Pix2PixUNet: input spatial shape {tuple(x.shape[2:])} must be a multiple of {m} (2**{self.levels} "
                f"levels) and at least {2 * m} along every axis (the innermost map is normalised, so it needs 2 "
                f"pixels); pad it, e.g. MONAI DivisiblePad(k={m})."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # TorchScript (ckpt_export) keeps the layers, not the Python checks
            self._check(x)
        skips: list[torch.Tensor] = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        skips.pop()  # the innermost map is the decoder's input, not a skip
        for up in self.up:
            x = torch.cat([up(x), skips.pop()], dim=1)
        return self.out(x)
