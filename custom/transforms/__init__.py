"""Transforms MONAI lacks, for the bundles' JSON pipelines."""

from custom.transforms.background import FillOutsideMaskd
from custom.transforms.body_mask import BodyMaskd, body_mask
from custom.transforms.case_name import CaseToMetad
from custom.transforms.checked_load import LoadCheckedImaged
from custom.transforms.percentile_scale import ScalePercentiles, ScalePercentilesd, ScaleRanged, scale_range
from custom.transforms.uncertainty import SplitUncertaintyd

__all__ = [
    "FillOutsideMaskd",
    "BodyMaskd",
    "CaseToMetad",
    "LoadCheckedImaged",
    "ScalePercentiles",
    "ScalePercentilesd",
    "ScaleRanged",
    "SplitUncertaintyd",
    "body_mask",
    "scale_range",
]
