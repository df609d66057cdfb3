"""Inference helpers MONAI lacks: run an inferer on the body only, and hand it the body mask from the batch; run an
ensemble of models under test-time flips."""

from custom.inferers.crop_to_mask import CropToMaskInferer, mask_bounding_box
from custom.inferers.ensemble import EnsembleInferer
from custom.inferers.prepare_batch import PrepareBatchWithMask

__all__ = ["CropToMaskInferer", "EnsembleInferer", "mask_bounding_box", "PrepareBatchWithMask"]
