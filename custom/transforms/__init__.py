"""Transforms MONAI lacks, for the bundles' JSON pipelines."""

from custom.transforms.background import FillOutsideMaskd
from custom.transforms.body_mask import BodyMaskd, body_mask

__all__ = ["FillOutsideMaskd", "BodyMaskd", "body_mask"]
