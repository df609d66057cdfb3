"""Networks MONAI lacks: the pix2pixHD-style multi-scale PatchGAN discriminator."""

from .multiscale_discriminator import MultiScaleDiscriminator

__all__ = ["MultiScaleDiscriminator"]
