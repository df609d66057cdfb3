"""Transforms MONAI lacks, for the bundles' JSON pipelines."""

from custom.transforms.background import FillOutsideMaskd
from custom.transforms.body_mask import BodyMaskd, body_mask
from custom.transforms.case_name import CaseToMetad
from custom.transforms.uncertainty import SplitUncertaintyd

__all__ = ["FillOutsideMaskd", "BodyMaskd", "CaseToMetad", "SplitUncertaintyd", "body_mask"]
