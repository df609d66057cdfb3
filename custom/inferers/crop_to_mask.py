"""Run a sliding-window inferer on the windows that touch the body mask only; everything else is background.

A sliding window over a whole volume spends some of its windows on air. The sCT outside the body mask is set
to air afterwards anyway (``custom.transforms.FillOutsideMaskd``), so the voxels this skips are never used. nnU-Net
crops to the non-zero region of the image before inference for the same reason (Isensee et al., "nnU-Net", Nature
Methods 2021).

**The crop does not change the answer inside the mask.** A voxel of a sliding-window prediction is the
importance-weighted mean of the windows that cover it, ``Σ_w g_w p_w / Σ_w g_w``; tiled from the mask's own corner,
the windows (and so the values) differ from the whole-volume run's (205 HU on average inside the mask on the demo
model). So the box is the bounding box of (mask > 0) ± margin grown, along each axis, to the union of the whole
volume's windows that touch it (MONAI's tiling: starts ``k · interval``, the last one moved back to end at the
border, ``interval = int(roi · (1 − overlap))``). Tiled by MONAI, that box has exactly those windows: its start is a
window start and its length is a window end minus it. Every voxel of the mask then sees the same windows, with the
same weights, as in the whole-volume run. Inside the box, a window with no mask voxel is not run either (its output
is ``background``): it covers no voxel of the mask, so no value inside the mask changes. The outputs agree with the
whole-volume run to float rounding (``tests/test_crop_to_mask.py``). The saving is smaller than a plain crop's: on
the procedural 256 × 256 × 180 head, 64³ windows at 50 % overlap, 200 of the 245 windows touch the mask (a crop to
the mask's box ran 100, and changed the sCT). For an inferer that is not a ``SlidingWindowInferer`` (a
``SliceInferer`` included) no such rule is known, and the whole input is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import torch
from monai.data import MetaTensor
from monai.data.utils import dense_patch_slices
from monai.inferers import Inferer, SliceInferer, SlidingWindowInferer
from monai.inferers.utils import _get_scan_interval
from monai.utils import convert_to_dst_type, ensure_tuple_rep, fall_back_tuple

__all__ = ["CropToMaskInferer", "mask_bounding_box", "window_aligned_box"]


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


def window_aligned_box(
    box: Sequence[slice], shape: Sequence[int], roi_size: Sequence[int] | int, overlap: Sequence[float] | float
) -> tuple[slice, ...]:
    """``box`` grown, along each axis, to the union of the sliding windows of the whole ``shape`` that touch it (see
    the module docstring), so that MONAI's sliding window over the grown box runs exactly those windows."""
    dims = len(shape)
    roi = fall_back_tuple(roi_size, shape)  # non-positive entries: the image size, as MONAI does
    grown = []
    for dim, (size, r, o, part) in enumerate(zip(shape, roi, ensure_tuple_rep(overlap, dims), box)):
        if size <= r:  # one (padded) window covers the axis: no crop along it
            grown.append(slice(0, size))
            continue
        interval = _get_scan_interval((size,), (r,), 1, (o,))
        windows = [w[0] for w in dense_patch_slices((size,), (r,), interval)]
        touching = [w for w in windows if w.start < part.stop and w.stop > part.start]
        grown.append(slice(min(w.start for w in touching), max(w.stop for w in touching)))
    return tuple(grown)


class _SkipWindowsOutsideMask:
    """The network on windows whose last channel (the mask) has a voxel > 0; ``background`` for the others, whose
    values only reach voxels outside the mask. The output's shape is learnt from the first window that runs (one
    window runs for it if the first batch is all outside)."""

    def __init__(self, network: Callable[..., torch.Tensor], background: float):
        self.network, self.background = network, background
        self.out_shape: tuple[int, ...] | None = None  # (channels, *spatial) of one output window

    def __call__(self, windows: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        image, touches = windows[:, :-1], windows[:, -1:].flatten(1).amax(1) > 0
        if bool(touches.all()):
            out = self.network(image, *args, **kwargs)
            self.out_shape = tuple(out.shape[1:])
            return out
        if self.out_shape is None and not bool(touches.any()):  # one window learns the output's shape
            self.out_shape = tuple(self.network(image[:1], *args, **kwargs).shape[1:])
        if not bool(touches.any()):
            return image.new_full((image.shape[0], *self.out_shape), self.background)
        ran = self.network(image[touches], *args, **kwargs)
        self.out_shape = tuple(ran.shape[1:])
        out = ran.new_full((image.shape[0], *self.out_shape), self.background)
        out[touches] = ran
        return out


class CropToMaskInferer(Inferer):
    """Wraps MONAI's ``SlidingWindowInferer`` so that, when the body mask is given (the ``mask`` keyword, see
    ``custom.inferers.PrepareBatchWithMask``), it runs only the whole volume's windows that touch the mask and the
    rest of the output is ``background``; inside the mask the result is the whole-volume run's (module docstring).
    Without a mask, or around another inferer, it runs the wrapped inferer on the whole input.

    Args:
        inferer: the inferer to run on the box (a ``SlidingWindowInferer`` for the crop to apply).
        background: the output value outside the box, in the network's output units (e.g. -1, air, for a tanh
            output scaled from the CT window).
        margin: voxels added to each side of the mask's box before it is grown to whole windows.
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
        windows = isinstance(self.inferer, SlidingWindowInferer) and not isinstance(self.inferer, SliceInferer)
        if mask is None or not windows:
            return self.inferer(inputs, network, *args, **kwargs)
        if tuple(mask.shape[2:]) != tuple(inputs.shape[2:]) or mask.shape[0] not in (1, inputs.shape[0]):
            raise ValueError(
                f"CropToMaskInferer: mask shape {tuple(mask.shape)} does not match the image's {tuple(inputs.shape)}."
            )
        roi, overlap = self.inferer.roi_size, self.inferer.overlap
        grown = window_aligned_box(mask_bounding_box(mask, self.margin), inputs.shape[2:], roi, overlap)
        box = (slice(None), slice(None), *(slice(int(b.start), int(b.stop)) for b in grown))
        plain = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
        inside = (mask > 0).any(1, keepdim=True).expand(plain.shape[0], 1, *plain.shape[2:])[box].to(plain.dtype)
        # the mask rides along as a last channel, so that each window knows whether it touches the body
        skipping = _SkipWindowsOutsideMask(network, self.background)
        pred = self.inferer(torch.cat([plain[box], inside], 1), skipping, *args, **kwargs)
        if not isinstance(pred, torch.Tensor):
            raise TypeError(f"CropToMaskInferer: the wrapped inferer must return a tensor, got {type(pred).__name__}.")
        pred = pred.as_tensor() if isinstance(pred, MetaTensor) else pred
        out = pred.new_full((*pred.shape[:2], *inputs.shape[2:]), self.background)
        out[box] = pred
        if not isinstance(inputs, MetaTensor):
            return out
        # the image's metadata on the output, as MONAI's sliding_window_inference gives it
        return convert_to_dst_type(out, MetaTensor([]).copy_meta_from(inputs, copy_attr=False), device=out.device)[0]
