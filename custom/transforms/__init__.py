"""Transforms MONAI lacks, for the bundles' JSON pipelines."""

from custom.transforms.background import FillOutsideMaskd

__all__ = ["FillOutsideMaskd"]
