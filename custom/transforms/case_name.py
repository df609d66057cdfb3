"""Carry an item's case id to the writer, so that an sCT is named after its case (``<case>_sct.nii.gz``), where
evaluation looks for it, not after its file (``mr.nii.gz``).

MONAI's ``SaveImaged`` names a file from the image's metadata only (its ``output_name_formatter`` sees the metadata,
not the item); this transform copies the item's ``case`` into that metadata, and
:func:`custom.outputs.sct_name_formatter` reads it there.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

__all__ = ["CaseToMetad"]


class CaseToMetad(MapTransform):
    """``data[key].meta["case"] = data[case_key]`` for each key; a no-op when the item has no case (e.g. under MONAI
    Label) or the image carries no metadata.

    Args:
        keys: images to name (e.g. ``"pred"``).
        case_key: the item's case id (datalist items and the items of :func:`custom.data.inputs.inference_items`
            have ``"case"``).
    """

    def __init__(self, keys: KeysCollection, case_key: str = "case") -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.case_key = case_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        case = d.get(self.case_key)
        if case is None:
            return d
        for key in self.key_iterator(d):
            if isinstance(d[key], MetaTensor):
                d[key].meta["case"] = str(case)
        return d
