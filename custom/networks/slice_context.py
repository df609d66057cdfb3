"""A 2.5D generator: a 2D network that sees each slice with its neighbours as input channels.

For a volume ``x`` (B, 1, H, W, D) and ``r`` context slices on each side, output slice ``z`` is

    y[..., z] = act(backbone(cat(x[..., z - r], ..., x[..., z], ..., x[..., z + r])))     (channels: 2r + 1)

with the volume's end slices repeated where ``z +- k`` falls outside it (the edge, as replicate padding). Training
gives the network slabs already turned into channels, (B, 2r + 1, H, W), and the centre slice as the target (the
``train_2p5d.json`` configs do it with MONAI transforms); inference gives it whole volumes (or volume patches with all
their slices, e.g. ``SlidingWindowInferer(roi_size=[256, 256, -1])``) and gets a volume back. So the trainer, the
losses and the inferers stay those of 2D; only the network definition (``context``) and the data sampling change.

Reference: the "2.5D" configurations (adjacent slices as channels of a 2D network) reviewed in M. F. Spadea, M.
Maspero, P. Zaffino, J. Seco, "Deep learning based synthetic-CT generation in radiotherapy and PET: a review", Med.
Phys. 48(11), 2021; here adjacent axial slices.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from custom.networks.generator import Generator, _json_able

__all__ = ["SliceContextGenerator"]


class SliceContextGenerator(Generator):
    """:class:`~custom.networks.Generator` whose 2D backbone takes ``2 * context + 1`` adjacent slices as channels.

    Args:
        context: number of neighbouring slices on each side, ``r >= 1``; the backbone's ``in_channels`` must be
            ``2 r + 1``.
        slices_per_batch: how many output slices go through the backbone at once for volume inputs (memory).
        backbone, output_act, kwargs: as :class:`~custom.networks.Generator` (``spatial_dims`` must be 2).

    Example (bundle config)::

        "network_def": {"_target_": "custom.networks.SliceContextGenerator", "context": 1,
                        "backbone": "monai.networks.nets.BasicUNet", "spatial_dims": 2, "in_channels": 3,
                        "out_channels": 1, "features": [32, 32, 64, 128, 256, 32]}
    """

    def __init__(self, context: int = 1, slices_per_batch: int = 8, **kwargs: Any):
        if isinstance(context, bool) or not isinstance(context, int) or context < 1:
            raise ValueError(f"SliceContextGenerator: context must be an integer >= 1, got {context!r}.")
        if kwargs.get("spatial_dims", 2) != 2:
            raise ValueError(
                f"SliceContextGenerator: the backbone must be 2D, got spatial_dims={kwargs['spatial_dims']}."
            )
        if kwargs.get("in_channels") != 2 * context + 1:
            raise ValueError(
                f"SliceContextGenerator: in_channels must be 2 * context + 1 = {2 * context + 1} (the slice and "
                f"{context} neighbour(s) on each side), got {kwargs.get('in_channels')!r}."
            )
        if isinstance(slices_per_batch, bool) or not isinstance(slices_per_batch, int) or slices_per_batch < 1:
            raise ValueError(
                f"SliceContextGenerator: slices_per_batch must be an integer >= 1, got {slices_per_batch!r}."
            )
        super().__init__(**kwargs)
        self.context, self.slices_per_batch = context, slices_per_batch

    def definition(self) -> dict[str, Any]:
        return {
            "_target_": "custom.networks.SliceContextGenerator",
            "context": self.context,
            "slices_per_batch": self.slices_per_batch,
            **_json_able(self._definition),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2r + 1, H, W) slabs as channels -> (B, 1, H, W); or (B, 1, H, W, D) volumes -> (B, C_out, H, W, D)."""
        width = 2 * self.context + 1
        if x.ndim == 4:
            if x.shape[1] != width:
                raise ValueError(f"SliceContextGenerator: expected {width} slices as channels, got {tuple(x.shape)}.")
            return super().forward(x)
        if x.ndim != 5 or x.shape[1] != 1:
            raise ValueError(
                f"SliceContextGenerator: expected slabs (B, {width}, H, W) or volumes (B, 1, H, W, D), "
                f"got {tuple(x.shape)}."
            )
        b, _, h, w, d = x.shape
        # replicate the end slices: F.pad's "replicate" pads the last dims of a (B, C, H, W, D) tensor
        padded = F.pad(x, (self.context, self.context, 0, 0, 0, 0), mode="replicate")
        slabs = padded[:, 0].unfold(-1, width, 1)  # (B, H, W, D, 2r + 1): slab of each output slice
        slabs = slabs.permute(0, 3, 4, 1, 2).reshape(b * d, width, h, w)
        out = torch.cat(
            [super(SliceContextGenerator, self).forward(chunk) for chunk in slabs.split(self.slices_per_batch)]
        )
        return out.reshape(b, d, -1, h, w).permute(0, 2, 3, 4, 1)
