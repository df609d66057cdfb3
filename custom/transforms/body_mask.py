"""A body mask from the images themselves, for data without one (unpaired MR, CT of other patients, 2D slices).

    mask = largest connected component of fill_holes_per_slice(image_1 > t_1  or  image_2 > t_2  or ...)

Holes are filled in each plane of the first two spatial axes (the axial plane of RAS volumes, the image of a 2D
slice), so dark structures enclosed by tissue in that plane are inside the body: cortical bone and air cavities on
MR, sinuses, airways and lungs on CT. Filling in 3D would miss them, because a volume cut through the head or trunk
leaves them open at its ends. Several images of one case (CT and MR) give the union of their bodies, as the 8-bit
AANLIB protocol defines the body (``../shared/tools/eval2d.py``: CT > 10 or MR > 10), so that tissue present in only
one of two imperfectly registered images is scored.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from scipy import ndimage

__all__ = ["BodyMaskd", "body_mask"]


def _largest_filled_component(foreground: np.ndarray) -> np.ndarray:
    """(H, W[, D]) boolean -> (1, H, W[, D]) uint8: holes filled in each (H, W) plane, largest connected component."""
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


def body_mask(image: np.ndarray, threshold: float) -> np.ndarray:
    """Binary body mask of a (C, H, W) or (C, H, W, D) image (first channel), shape (1, H, W[, D]), uint8: above
    ``threshold``, holes filled in each (H, W) plane, largest connected component (all zeros if nothing is above)."""
    return _largest_filled_component(np.asarray(image)[0] > threshold)


class BodyMaskd(MapTransform):
    """``data[mask_key]`` = the body of ``data[key] > threshold``, or of the union over several keys, each with its own
    threshold (see the module docstring), unless the data already have a ``mask_key`` (a given mask wins) and
    ``overwrite`` is False.

    Args:
        keys: the image(s) to threshold, e.g. ``"image"`` (MR), ``"label"`` (CT) or ``["label", "image"]`` (both).
        mask_key: where to put the mask, e.g. ``"mask"`` or ``"ct_mask"``.
        threshold: body/air threshold in each image's current units, one number for every key or one per key (e.g.
            -500 for a CT in HU before it is scaled; -0.8 for an MR scaled to [-1, 1]).
        overwrite: recompute the mask even when the data have one.
    """

    def __init__(
        self, keys: KeysCollection, mask_key: str, threshold: float | Sequence[float], overwrite: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys=False)
        thresholds = [threshold] * len(self.keys) if np.isscalar(threshold) else list(threshold)
        if len(thresholds) != len(self.keys):
            raise ValueError(f"BodyMaskd: {len(thresholds)} thresholds for {len(self.keys)} keys {list(self.keys)}.")
        self.mask_key, self.thresholds, self.overwrite = mask_key, [float(t) for t in thresholds], bool(overwrite)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        if d.get(self.mask_key) is not None and not self.overwrite:
            return d
        bodies = {}
        for key, threshold in zip(self.key_iterator(d), self.thresholds):
            image = d[key]
            array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
            bodies[key] = array[0] > threshold
        if len({body.shape for body in bodies.values()}) > 1:
            shapes = ", ".join(f"{key!r} {body.shape}" for key, body in bodies.items())
            raise ValueError(f"BodyMaskd: the images of one body mask differ in shape: {shapes}.")
        mask = torch.as_tensor(_largest_filled_component(np.logical_or.reduce(list(bodies.values()))))
        first = d[self.keys[0]]
        if hasattr(first, "copy_meta_from"):  # a MetaTensor: the mask keeps its geometry for later transforms
            mask = type(first)(mask, meta=first.meta, applied_operations=list(first.applied_operations))
        d[self.mask_key] = mask
        return d
