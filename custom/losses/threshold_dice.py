"""Soft Dice of a thresholded class (e.g. bone): the segmentation the synthetic CT implies, trained directly.

A CT threshold ``t`` defines a class (bone: ``CT >= t``). The prediction's class is relaxed with a sigmoid of
temperature ``τ`` so that it has a gradient, and compared with the target's class by soft Dice, over the batch::

    s    = σ((P - t) / τ)                 (soft class of the prediction P)
    g    = 1[G >= t]                      (class of the target G)
    loss = 1 - (2 Σ s·g·m + ε) / (Σ s·m + Σ g·m + ε)     (m: optional mask weights, e.g. the body)

Pixels far from the threshold on either side give ``σ'`` ≈ 0: the term shapes the class boundary (where a bone edge
or a thin skull falls just below ``t``) and leaves intensities far from it, soft tissue for bone, to the L1 term. It is
symmetric in the sense that matters for the level: missing class pixels and adding false ones both cost, unlike an
intensity-weighted L1 that favours a brighter image.

References: F. Milletari et al., "V-Net", 3DV 2016 (soft Dice); the Dice itself is MONAI's ``DiceLoss``
(``batch=True``: one Dice over the batch, so a slice without bone does not give 0/0).
"""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from torch.nn.modules.loss import _Loss

__all__ = ["ThresholdDiceLoss"]


class ThresholdDiceLoss(_Loss):
    """``1 - soft Dice(σ((pred - t) / τ), 1[target >= t])`` over the batch (module docstring).

    Args:
        threshold: the class threshold ``t`` in the images' (normalised) units, e.g. the bone level mapped to [-1, 1].
        temperature: ``τ`` > 0, in the same units: the width of the sigmoid's transition.
        smooth: ``ε`` of the numerator and denominator (an empty class in both gives loss 0; a batch whose target
            has no class pixel costs almost 1 for any prediction above ``t``, which pushes it below).
    """

    def __init__(self, threshold: float, temperature: float = 0.02, smooth: float = 1e-5) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"ThresholdDiceLoss: temperature must be > 0, got {temperature}.")
        self.threshold, self.temperature = float(threshold), float(temperature)
        self.dice = DiceLoss(batch=True, smooth_nr=smooth, smooth_dr=smooth)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            pred: prediction, shape (B, C, *spatial).
            target: reference image, same shape.
            mask: optional weights broadcastable to ``pred`` (e.g. a body mask (B, 1, *spatial)).
        """
        if pred.shape != target.shape:
            raise ValueError(f"ThresholdDiceLoss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ.")
        soft = torch.sigmoid((pred - self.threshold) / self.temperature)
        hard = (target >= self.threshold).to(soft.dtype)
        if mask is not None:
            weights = mask.to(soft.dtype).expand_as(soft)
            soft, hard = soft * weights, hard * weights
        return self.dice(soft, hard)
