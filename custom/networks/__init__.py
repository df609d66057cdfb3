"""Networks MONAI lacks: the pix2pixHD multi-scale PatchGAN, the pix2pix U-Net, CycleGAN's ResNet generator, a
generator whose definition is plain data and its 2.5D form (neighbouring slices as channels); the preparation of a
network for training (one process or several; channels-last, with an instance norm that keeps that layout) and for
fast inference; the choice of precision; ensembles and test-time flips and shifts with their spread."""

from .channels_last_norm import ChannelsLastInstanceNorm
from .distributed import for_training
from .ensemble import BONE_RULES, COMBINE_RULES, Augmentation, Ensemble, tta_variants
from .generator import Generator
from .inference_network import prepare_for_inference
from .multiscale_discriminator import MultiScaleDiscriminator
from .pix2pix_unet import Pix2PixUNet
from .precision import PRECISION_CHOICES, PRECISIONS, native_bf16, resolve_precision
from .resnet_generator import ResNetGenerator
from .slice_context import SliceContextGenerator

__all__ = [
    "Augmentation",
    "BONE_RULES",
    "COMBINE_RULES",
    "ChannelsLastInstanceNorm",
    "PRECISIONS",
    "PRECISION_CHOICES",
    "Ensemble",
    "Generator",
    "MultiScaleDiscriminator",
    "Pix2PixUNet",
    "ResNetGenerator",
    "SliceContextGenerator",
    "tta_variants",
    "for_training",
    "native_bf16",
    "prepare_for_inference",
    "resolve_precision",
]
