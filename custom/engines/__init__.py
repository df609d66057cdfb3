"""Training engines (MONAI ``Trainer`` subclasses): the shared GAN machinery and the GAN steps built on it."""

from custom.engines.cyclegan_trainer import CycleGanTrainer
from custom.engines.diff_augment import DiffAugment
from custom.engines.gan_trainer import GanTrainer
from custom.engines.image_pool import ImagePool
from custom.engines.pix2pix_trainer import Pix2PixTrainer

__all__ = ["GanTrainer", "Pix2PixTrainer", "CycleGanTrainer", "DiffAugment", "ImagePool"]
