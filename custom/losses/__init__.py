"""Losses MONAI lacks (NGF, feature matching), the adversarial wrappers and the generator loss recipe."""

from .adversarial import DiscriminatorAdversarialLoss, GeneratorAdversarialLoss, discriminator_logits
from .feature_matching import feature_matching_loss
from .loss_recipe import LossRecipe, LossTerm, masked_mean
from .ngf import NGFLoss

__all__ = [
    "DiscriminatorAdversarialLoss",
    "GeneratorAdversarialLoss",
    "LossRecipe",
    "LossTerm",
    "NGFLoss",
    "discriminator_logits",
    "feature_matching_loss",
    "masked_mean",
]
