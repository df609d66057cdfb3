"""Run an inferer on the bounding box of the body mask only; everything outside the box is background.

    pred[box] = inferer(image[box]),  pred[elsewhere] = background,  box = bounding box of (mask > 0) ± margin

A sliding window over a whole head volume spends most of its windows on air: on a 256 × 256 × 180 head at 1 mm, 64³
windows at 50 % overlap number 245 over the volume and 100 over the head's box. The sCT outside the body mask is set
to air afterwards anyway (``custom.transforms.FillOutsideMaskd``), so the voxels this skips are never used; inside the
box the windows are laid out from the box's corner instead of the volume's, a different but equally valid tiling.
nnU-Net crops to the non-zero region of the image before inference for the same reason (Isensee et al., "nnU-Net",
Nature Methods 2021).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import torch
from monai.data import MetaTensor
from monai.inferers import Inferer
from monai.utils import convert_to_dst_type

__all__ = ["CropToMaskInferer", "mask_bounding_box"]


def mask_bounding_box(mask: torch.Tensor, margin: int | Sequence[int] = 0) -> tuple[slice, ...]:
    """Slices of the spatial box holding every voxel > 0 of ``mask`` (B, C, *spatial), over all batch items and
    channels, grown by ``margin`` voxels per side and clipped to the image."""
    spatial = mask.shape[2:]
    margins = [int(margin)] * len(spatial) if isinstance(margin, int) else [int(m) for m in margin]
    if len(margins) != len(spatial) or min(margins) < 0:
        raise ValueError(f"mask_bounding_box: margin {margin} must be >= 0, one value or one per spatial dim.")
    inside = (mask > 0).flatten(0, 1).any(0)
    if not bool(inside.any()):
        raise ValueError("mask_bounding_box: the body mask is empty (no voxel > 0).")
    box = []
    for dim, (size, grow) in enumerate(zip(spatial, margins)):
        hits = torch.nonzero(inside.any(dim=tuple(d for d in range(len(spatial)) if d != dim))).flatten()
        box.append(slice(max(int(hits[0]) - grow, 0), min(int(hits[-1]) + 1 + grow, size)))
    return tuple(box)


class CropToMaskInferer(Inferer):
    """Wraps an inferer (e.g. MONAI's ``SlidingWindowInferer``) so that, when the body mask is given (the ``mask``
    keyword, see ``custom.inferers.PrepareBatchWithMask``), it runs on the mask's bounding box only and the rest of
    the output is ``background``; without a mask it runs the wrapped inferer on the whole input.

    Args:
        inferer: the inferer to run on the box.
        background: the output value outside the box, in the network's output units (e.g. -1, air, for a tanh
            output scaled from the CT window).
        margin: voxels added to each side of the box (clipped to the image), e.g. for context at the body's edge.
    """

    def __init__(self, inferer: Inferer, background: float, margin: int | Sequence[int] = 0) -> None:
        if not callable(inferer):
            raise TypeError(f"CropToMaskInferer: inferer must be callable, got {type(inferer).__name__}.")
        self.inferer = inferer
        self.background = float(background)
        self.margin = margin

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:  # fmt: skip
        if mask is None:
            return self.inferer(inputs, network, *args, **kwargs)
        if tuple(mask.shape[2:]) != tuple(inputs.shape[2:]) or mask.shape[0] not in (1, inputs.shape[0]):
            raise ValueError(
                f"CropToMaskInferer: mask shape {tuple(mask.shape)} does not match the image's {tuple(inputs.shape)}."
            )
        box = (slice(None), slice(None), *mask_bounding_box(mask, self.margin))
        plain = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
        pred = self.inferer(plain[box], network, *args, **kwargs)
        if not isinstance(pred, torch.Tensor):
            raise TypeError(f"CropToMaskInferer: the wrapped inferer must return a tensor, got {type(pred).__name__}.")
        pred = pred.as_tensor() if isinstance(pred, MetaTensor) else pred
        out = pred.new_full((*pred.shape[:2], *inputs.shape[2:]), self.background)
        out[box] = pred
        if not isinstance(inputs, MetaTensor):
            return out
        # the image's metadata on the output, as MONAI's sliding_window_inference gives it
        return convert_to_dst_type(out, MetaTensor([]).copy_meta_from(inputs, copy_attr=False), device=out.device)[0]
