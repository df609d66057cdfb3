"""Differentiable augmentation of everything a discriminator sees, for GANs trained on few images.

Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020 (DiffAugment). With a few
dozen training images a discriminator memorises the real ones, and its verdicts stop carrying information the
generator can use. Augmenting only the real images would teach the generator the augmentations; DiffAugment applies
the same random, differentiable transformations T to real and synthetic images, in the discriminator step and in the
generator step (gradients flow through T to the generator):

    L_D = d_loss(D(T(y)), D(T(G(x))))        L_G = g_loss(D(T(G(x))))

Two of the paper's transformations, each drawn independently per image:

- ``translation``: an integer shift of up to ``translation`` x the image size along every spatial axis; the pixels
  shifted in are ``fill``;
- ``cutout``: a box of ``cutout`` x the image size at a random position set to ``fill``.

``fill`` is the background of the normalised images (-1: air in the CT window, no signal in the MR), not the 0 of the
paper, which is mid-grey here. The paper's colour transformations are not offered: brightness and contrast are what
a CT discriminator must judge.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["DiffAugment"]


class DiffAugment(torch.nn.Module):
    """``T`` of the module docstring for batches ``(B, C, *spatial)`` (2D or 3D); the identity in ``eval()`` mode.

    Args:
        policy: the transformations in the order applied, from ``"translation"`` and ``"cutout"``.
        translation: largest shift as a fraction of each spatial size (the paper: 1/8).
        cutout: box side as a fraction of each spatial size (the paper: 1/2).
        fill: value of the pixels shifted in and of the box.
    """

    POLICIES = ("translation", "cutout")

    def __init__(
        self,
        policy: Sequence[str] = ("translation", "cutout"),
        translation: float = 0.125,
        cutout: float = 0.5,
        fill: float = -1.0,
    ) -> None:
        super().__init__()
        unknown = [p for p in policy if p not in self.POLICIES]
        if unknown:
            raise ValueError(f"DiffAugment: unknown policy {unknown}; choose from {list(self.POLICIES)}.")
        if not 0.0 <= translation < 1.0 or not 0.0 <= cutout < 1.0:
            raise ValueError(f"DiffAugment: translation and cutout must be in [0, 1), got {translation}, {cutout}.")
        self.policy, self.translation, self.cutout, self.fill = tuple(policy), translation, cutout, float(fill)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        for name in self.policy:
            x = self._translate(x) if name == "translation" else self._cutout(x)
        return x

    def _translate(self, x: torch.Tensor) -> torch.Tensor:
        sizes = x.shape[2:]
        shifts = [int(self.translation * s + 0.5) for s in sizes]
        if not any(shifts):
            return x
        pad = [p for s in reversed(shifts) for p in (s, s)]  # F.pad lists the last axis first
        padded = F.pad(x, pad, value=self.fill)
        out = []
        for i in range(x.shape[0]):
            starts = [s + int(torch.randint(-s, s + 1, ())) for s in shifts]
            index = (i, slice(None), *(slice(b, b + n) for b, n in zip(starts, sizes)))
            out.append(padded[index])
        return torch.stack(out)

    def _cutout(self, x: torch.Tensor) -> torch.Tensor:
        sizes = x.shape[2:]
        box = [int(self.cutout * s + 0.5) for s in sizes]
        keep = torch.ones((x.shape[0], 1, *sizes), dtype=x.dtype, device=x.device)
        for i in range(x.shape[0]):
            starts = [int(torch.randint(0, n - b + 1, ())) for n, b in zip(sizes, box)]
            keep[(i, slice(None), *(slice(s, s + b) for s, b in zip(starts, box)))] = 0
        return x * keep + self.fill * (1 - keep)
