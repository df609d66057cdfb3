"""A body mask from the image itself, for data without one (unpaired MR, CT of other patients, 2D slices).

    mask = largest connected component of fill_holes_per_slice(image > threshold)

Holes are filled in each plane of the first two spatial axes (the axial plane of RAS volumes, the image of a 2D
slice), so dark structures enclosed by tissue in that plane are inside the body: cortical bone and air cavities on
MR, sinuses, airways and lungs on CT. Filling in 3D would miss them, because a volume cut through the head or trunk
leaves them open at its ends.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from scipy import ndimage

__all__ = ["BodyMaskd", "body_mask"]


def body_mask(image: np.ndarray, threshold: float) -> np.ndarray:
    """Binary body mask of a (C, H, W) or (C, H, W, D) image (first channel), shape (1, H, W[, D]), uint8: above
    ``threshold``, holes filled in each (H, W) plane, largest connected component (all zeros if nothing is above)."""
    foreground = np.asarray(image)[0] > threshold
    planes = foreground if foreground.ndim == 2 else np.moveaxis(foreground, -1, 0)
    filled = np.stack([ndimage.binary_fill_holes(p) for p in planes.reshape((-1, *planes.shape[-2:]))])
    filled = filled.reshape(planes.shape)
    if foreground.ndim == 3:
        filled = np.moveaxis(filled, 0, -1)
    labels, count = ndimage.label(filled)
    if count > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        filled = labels == int(np.argmax(sizes))
    return filled[None].astype(np.uint8)


class BodyMaskd(MapTransform):
    """``data[mask_key] = body_mask(data[key], threshold)`` (see the module docstring), unless the data already have
    a ``mask_key`` (a given mask wins) and ``overwrite`` is False.

    Args:
        keys: the image to threshold (one key), e.g. ``"image"`` (MR) or ``"label"`` (CT).
        mask_key: where to put the mask, e.g. ``"mask"`` or ``"ct_mask"``.
        threshold: body/air threshold in the image's current units (e.g. -500 before a CT is scaled, in HU; -0.8
            for an MR scaled to [-1, 1]).
        overwrite: recompute the mask even when the data have one.
    """

    def __init__(self, keys: KeysCollection, mask_key: str, threshold: float, overwrite: bool = False) -> None:
        super().__init__(keys, allow_missing_keys=False)
        if len(self.keys) != 1:
            raise ValueError(f"BodyMaskd: one image key, got {self.keys}.")
        self.mask_key, self.threshold, self.overwrite = mask_key, float(threshold), bool(overwrite)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        if d.get(self.mask_key) is not None and not self.overwrite:
            return d
        for key in self.key_iterator(d):
            image = d[key]
            array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
            mask = torch.as_tensor(body_mask(array, self.threshold))
            if hasattr(image, "copy_meta_from"):  # a MetaTensor: the mask keeps its geometry for later transforms
                mask = type(image)(mask, meta=image.meta, applied_operations=list(image.applied_operations))
            d[self.mask_key] = mask
        return d
