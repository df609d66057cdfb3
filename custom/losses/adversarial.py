"""Adversarial losses on patch-discriminator outputs, for the GAN trainers and the generator loss recipe.

MONAI's ``PatchAdversarialLoss`` takes a list of logits; the discriminators produce richer outputs (features with
the logits last, one list per scale). :func:`discriminator_logits` extracts the logits, and the two wrappers give the
generator's and the discriminator's side of the same loss ``adv``:

    generator:      L_adv = adv(D(fake), real)
    discriminator:  L_D   = 0.5 · (adv(D(real), real) + adv(D(fake), fake))

Reference: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014; Mao et al., "Least Squares Generative
Adversarial Networks", ICCV 2017 (``criterion="least_squares"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["discriminator_logits", "GeneratorAdversarialLoss", "DiscriminatorAdversarialLoss"]


def discriminator_logits(out: Any) -> list[torch.Tensor]:
    """Per-scale logits of a patch discriminator's output, for MONAI's ``PatchAdversarialLoss``.

    Accepts MONAI's ``PatchDiscriminator`` output (a list of features, logits last), a list of such lists (one per
    scale, ``custom.networks.MultiScaleDiscriminator``), MONAI's ``MultiScalePatchDiscriminator`` output (a tuple
    ``(logits, features)``) and a plain logits tensor.
    """
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], list):
        return list(out[0])
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out[0], torch.Tensor):
        return [out[-1]]
    return [scale[-1] for scale in out]


class GeneratorAdversarialLoss:
    """``adv(D(fake), target_is_real=True)``: the generator's adversarial term, ``loss(d_fake)``.

    Args:
        adversarial_loss: e.g. MONAI ``PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)``.
    """

    def __init__(self, adversarial_loss: Callable) -> None:
        self.adversarial_loss = adversarial_loss

    def __call__(self, d_fake: Any) -> torch.Tensor:
        return self.adversarial_loss(discriminator_logits(d_fake), target_is_real=True, for_discriminator=False)


class DiscriminatorAdversarialLoss:
    """``0.5 · (adv(D(real), real) + adv(D(fake), fake))``: the discriminator's loss, ``loss(d_real, d_fake)``."""

    def __init__(self, adversarial_loss: Callable) -> None:
        self.adversarial_loss = adversarial_loss

    def __call__(self, d_real: Any, d_fake: Any) -> torch.Tensor:
        real = self.adversarial_loss(discriminator_logits(d_real), target_is_real=True, for_discriminator=True)
        fake = self.adversarial_loss(discriminator_logits(d_fake), target_is_real=False, for_discriminator=True)
        return 0.5 * (real + fake)
