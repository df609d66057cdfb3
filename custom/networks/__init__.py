"""Networks MONAI lacks: the pix2pixHD multi-scale PatchGAN and a generator whose definition is plain data."""

from .generator import Generator
from .multiscale_discriminator import MultiScaleDiscriminator

__all__ = ["Generator", "MultiScaleDiscriminator"]
