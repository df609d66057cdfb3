"""Density-weighted L1 loss: errors in dense tissue (bone) weigh more than errors in air.

Reference: K. Karimzadeh, B. Ibragimov, "MRI to Synthesis-CT Generation Using Pix2Pix Framework", SynthRAD 2023
challenge entry (the weighted MAE of their generator loss).

For a target CT ``G`` normalised to the range ``[a, b]`` (``[-1, 1]`` in the bundles) and a prediction ``P``, element
by element::

    W    = (G - a) / (b - a)          ([-1, 1]: W = (1 + G) / 2; air 0, the top of the CT window 1)
    loss = W · |G - P|

``mean(loss)`` is the paper's ``mean(W · |G − P|)``. With ``min_weight`` ``m > 0`` (not in the paper) the weight is
``m + (1 - m) · W``: the weights still rise with density, but no tissue weighs 0. This matters for a CT window whose
bottom is tissue rather than air: in an 8-bit brain window fat and air are both at grey level 0, so the paper's
weight ignores their errors entirely, where the HU window ``[-1024, 3000]`` gives fat about 0.23. ``m = 1`` is the
plain L1. The loss is element-wise (``reduction="none"``, the default) so that ``custom.losses.LossRecipe`` can
restrict it to the body mask; ``"mean"`` and ``"sum"`` reduce it here. With the paper's weight, air (``G = a``) gets
weight 0: the term alone does not teach the generator the background, which the SSIM and adversarial terms of the
recipe (and the body mask at inference) take care of.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

__all__ = ["DensityWeightedL1Loss"]


class DensityWeightedL1Loss(_Loss):
    """``W · |target - pred|`` with ``W = (target - a) / (b - a)``, ``[a, b]`` = ``value_range`` (module docstring).

    Args:
        value_range: the range ``[a, b]`` the target CT is normalised to. Defaults to ``(-1, 1)``.
        min_weight: the weight of the bottom of the range, ``m`` in ``m + (1 - m) · W``, in ``[0, 1]``. Defaults to 0
            (the paper's weight).
        reduction: ``"none"`` (default, element-wise), ``"mean"`` or ``"sum"``.
    """

    def __init__(
        self,
        value_range: Sequence[float] = (-1.0, 1.0),
        min_weight: float = 0.0,
        reduction: LossReduction | str = "none",
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        low, high = (float(v) for v in value_range)
        if not high > low:
            raise ValueError(f"DensityWeightedL1Loss: value_range must be [a, b] with b > a, got {value_range!r}.")
        if not 0.0 <= float(min_weight) <= 1.0:
            raise ValueError(f"DensityWeightedL1Loss: min_weight must be in [0, 1], got {min_weight!r}.")
        self.low, self.high = low, high
        self.min_weight = float(min_weight)

    def weights(self, target: torch.Tensor) -> torch.Tensor:
        """``m + (1 - m) · W`` with ``W = (target - a) / (b - a)`` clipped to [0, 1] (a target outside its range weighs
        like its edge)."""
        density = ((target - self.low) / (self.high - self.low)).clamp(0.0, 1.0)
        return self.min_weight + (1.0 - self.min_weight) * density

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(
                f"DensityWeightedL1Loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ."
            )
        loss = self.weights(target) * (target - pred).abs()
        if self.reduction == LossReduction.MEAN.value:
            return loss.mean()
        if self.reduction == LossReduction.SUM.value:
            return loss.sum()
        return loss
