"""Training engines (MONAI ``Trainer`` subclasses) for the sCT bundles."""

from custom.engines.pix2pix_trainer import LOSS_NAMES, Pix2PixTrainer, discriminator_logits

__all__ = ["LOSS_NAMES", "Pix2PixTrainer", "discriminator_logits"]
