"""Networks MONAI lacks: the pix2pixHD multi-scale PatchGAN, the pix2pix U-Net and a generator whose definition is
plain data."""

from .generator import Generator
from .multiscale_discriminator import MultiScaleDiscriminator
from .pix2pix_unet import Pix2PixUNet

__all__ = ["Generator", "MultiScaleDiscriminator", "Pix2PixUNet"]
