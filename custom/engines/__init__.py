"""Training engines (MONAI ``Trainer`` subclasses): the shared GAN machinery and the GAN steps built on it."""

from custom.engines.gan_trainer import GanTrainer
from custom.engines.pix2pix_trainer import Pix2PixTrainer

__all__ = ["GanTrainer", "Pix2PixTrainer"]
