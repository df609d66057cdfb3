"""Losses MONAI lacks (NGF, feature matching, correlation coefficient, shape constraint, intensity distribution,
density-weighted L1, thresholded soft Dice), MONAI's SSIM loss with a separable window, the adversarial wrappers and
the generator loss recipe."""

from .adversarial import DiscriminatorAdversarialLoss, GeneratorAdversarialLoss, discriminator_logits
from .correlation import CorrelationCoefficientLoss, correlation_coefficient
from .feature_matching import feature_matching_loss
from .intensity_distribution import IntensityDistributionLoss
from .loss_recipe import LossRecipe, LossTerm, masked_mean
from .ngf import NGFLoss
from .shape import ShapeConstraintLoss, fill_from_four_sides
from .ssim import SeparableSSIMLoss
from .threshold_dice import ThresholdDiceLoss
from .weighted_l1 import DensityWeightedL1Loss

__all__ = [
    "DensityWeightedL1Loss",
    "DiscriminatorAdversarialLoss",
    "GeneratorAdversarialLoss",
    "IntensityDistributionLoss",
    "LossRecipe",
    "LossTerm",
    "NGFLoss",
    "SeparableSSIMLoss",
    "ThresholdDiceLoss",
    "discriminator_logits",
    "feature_matching_loss",
    "masked_mean",
    "CorrelationCoefficientLoss",
    "ShapeConstraintLoss",
    "correlation_coefficient",
    "fill_from_four_sides",
]
