"""Set everything outside the body mask to a background value (air in the synthetic CT).

MONAI's ``MaskIntensity`` zeroes the outside; a CT needs air (-1024 HU), and the mask is optional at inference
(no mask -> the prediction is left as it is).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

__all__ = ["FillOutsideMaskd"]


class FillOutsideMaskd(MapTransform):
    """``data[key][mask <= 0] = value`` for each key; a no-op when ``mask_key`` is absent from the data.

    Args:
        keys: images to fill (e.g. ``"pred"``).
        mask_key: body mask key, same spatial shape as the images (a single channel broadcasts over channels).
        value: background value, e.g. -1024 (HU) or -1 (normalised).
        allow_missing_keys: skip keys the data lacks (e.g. an uncertainty map that was not asked for).
    """

    def __init__(
        self, keys: KeysCollection, mask_key: str = "mask", value: float = -1024.0, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys=allow_missing_keys)
        self.mask_key = mask_key
        self.value = value

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        if d.get(self.mask_key) is None:
            return d
        mask = torch.as_tensor(d[self.mask_key]) > 0
        for key in self.key_iterator(d):
            image = d[key]
            if image.shape[1:] != mask.shape[1:]:
                raise ValueError(
                    f"FillOutsideMaskd: {key} spatial shape {tuple(image.shape[1:])} != mask shape "
                    f"{tuple(mask.shape[1:])}."
                )
            d[key] = torch.where(mask.to(image.device).expand_as(image), image, torch.as_tensor(self.value).to(image))
        return d
