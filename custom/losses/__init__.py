"""Losses MONAI lacks: the Normalized Gradient Field loss and the pix2pixHD feature-matching loss."""

from .feature_matching import feature_matching_loss
from .ngf import NGFLoss

__all__ = ["NGFLoss", "feature_matching_loss"]
