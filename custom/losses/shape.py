"""Shape constraint of unpaired MR -> CT synthesis: the body outline of the synthetic CT must be the MR's.

Reference: after the shape constraint of Y. Ge et al., "Unpaired whole-body MR to CT synthesis with correlation
coefficient constrained adversarial learning", SPIE Medical Imaging 2019: without pairs, nothing else stops the
generator from moving or reshaping the body. This version needs no trained network and works per pixel, so at any
batch size.

With ``HU(x) = w_lo + (x - u_lo) (w_hi - w_lo) / (u_hi - u_lo)`` the synthetic CT ``x`` in Hounsfield units (CT window
``[w_lo, w_hi]`` mapped to the network's range ``[u_lo, u_hi]``), a differentiable body mask of the synthetic CT is

    s = sigmoid((HU(x) - t) / T)              t: body threshold in HU (-500), T: temperature in HU (50)

(about 0 for air, 1 for tissue; the step is 10-90 % over ``t +- 2.2 T``) and the loss compares it with the MR's body
mask ``m`` (binary or soft, in [0, 1]) by L1:

    L_outline = mean_i | fill(s)_i - fill(m)_i |

The sigmoid saturates: a pixel far on the wrong side of ``t`` (a grey background a GAN starts with, hundreds of HU
above the threshold) has ``s = 1`` and no gradient, so the outline term cannot remove it. Outside the MR's (filled)
body a hinge on the intensity itself, whose gradient does not vanish, pushes every pixel below the threshold:

    L_outside = mean_i (1 - fill(m)_i) relu(HU(x_i) - t) / (w_hi - w_lo)
    L_shape   = L_outline + L_outside           (``outside_hinge=True``, default; False: L_outline alone)

``fill`` (``fill_holes=True``, default) keeps the outline only: a pixel is inside when the image reaches it from all
four sides along its row and column, ``fill(s) = min(cummax_left(s), cummax_right(s), cummax_up(s), cummax_down(s))``
in the plane of the first two spatial axes (axial for RAS volumes), a differentiable stand-in for hole filling.
Without it, air inside the body (sinuses, airways, lungs, bowel gas), which is dark in the synthetic CT but inside
the MR's filled body mask, would be penalised as if it were missing tissue.

Extension point: a trained shape extractor (``extractor``, e.g. a MONAI segmentation network trained on CT body
masks, weights from ``extractor_checkpoint``) replaces the sigmoid: ``s = sigmoid(extractor(x))[:, :1]`` (its first
channel, logits); its weights are frozen. No trained extractor is shipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

from custom.ct_range import to_ct

__all__ = ["ShapeConstraintLoss", "fill_from_four_sides"]


def fill_from_four_sides(mask: torch.Tensor) -> torch.Tensor:
    """``min`` of the running maxima of a (B, C, H, W[, D]) ``mask`` from the four sides of the plane of its first two
    spatial axes (the image plane of 2D slices, the axial plane of RAS volumes): holes bounded on all four sides of
    their row and column are filled; differentiable (the gradient goes to the maxima)."""
    sides = []
    for dim in (2, 3):
        sides.append(torch.cummax(mask, dim=dim).values)
        sides.append(torch.cummax(mask.flip(dim), dim=dim).values.flip(dim))
    return torch.stack(sides).amin(dim=0)


def _pair(name: str, value: Sequence[float]) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    if not high > low:
        raise ValueError(f"ShapeConstraintLoss: {name} must be (low, high) with high > low, got {tuple(value)}.")
    return low, high


class ShapeConstraintLoss(_Loss):
    """L1 between a soft body mask of the synthetic CT and the MR's body mask (see the module docstring).

    Args:
        threshold_hu: body/air threshold in HU (default -500).
        temperature_hu: width of the sigmoid in HU, > 0 (default 50).
        ct_window: the CT window ``(w_lo, w_hi)`` in HU that the network's range stands for (the bundle's
            ``ct_window``).
        unit_range: the network's intensity range ``(u_lo, u_hi)`` (the bundle's ``unit_range``).
        fill_holes: compare outlines only (``fill_from_four_sides`` on both masks); default True.
        outside_hinge: add ``L_outside``, the non-saturating hinge outside the MR's body; default True.
        extractor: optional network giving body logits (channel 0) for the synthetic CT, used instead of the
            sigmoid; frozen.
        extractor_checkpoint: optional state dict file loaded strictly into ``extractor``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (the per-pixel map, shape of the input).

    Example (bundle config)::

        "shape_loss": {"_target_": "custom.losses.ShapeConstraintLoss", "threshold_hu": -500, "temperature_hu": 50,
                       "ct_window": "@ct_window", "unit_range": "@unit_range"}
    """

    def __init__(
        self,
        threshold_hu: float = -500.0,
        temperature_hu: float = 50.0,
        ct_window: Sequence[float] = (-1024.0, 3071.0),
        unit_range: Sequence[float] = (-1.0, 1.0),
        fill_holes: bool = True,
        outside_hinge: bool = True,
        extractor: torch.nn.Module | None = None,
        extractor_checkpoint: str | None = None,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        if not float(temperature_hu) > 0:
            raise ValueError(f"ShapeConstraintLoss: temperature_hu must be > 0, got {temperature_hu!r}.")
        self.window = _pair("ct_window", ct_window)
        self.units = _pair("unit_range", unit_range)
        self.threshold_hu, self.temperature_hu = float(threshold_hu), float(temperature_hu)
        self.fill_holes, self.outside_hinge = bool(fill_holes), bool(outside_hinge)
        if extractor_checkpoint is not None:
            if extractor is None:
                raise ValueError("ShapeConstraintLoss: extractor_checkpoint needs an extractor network to load into.")
            extractor.load_state_dict(torch.load(extractor_checkpoint, map_location="cpu", weights_only=True))
        self.extractor = extractor
        if extractor is not None:
            extractor.requires_grad_(False).eval()

    def to_hu(self, x: torch.Tensor) -> torch.Tensor:
        """The network's values in HU (:func:`custom.ct_range.to_ct`, not clipped)."""
        return to_ct(x, self.units, self.window)

    def soft_mask(self, ct: torch.Tensor) -> torch.Tensor:
        """The differentiable body mask of a (synthetic) CT in the network's range, values in (0, 1)."""
        if self.extractor is not None:
            return torch.sigmoid(self.extractor(ct)[:, :1])
        return torch.sigmoid((self.to_hu(ct) - self.threshold_hu) / self.temperature_hu)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: the synthetic CT, (B, 1, H, W) or (B, 1, H, W, D), in ``unit_range``.
            target: the MR body mask, (B, 1, *spatial), in [0, 1].
        """
        if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError("ShapeConstraintLoss: input (synthetic CT) and target (MR body mask) must be tensors.")
        if input.ndim < 4 or target.shape != input.shape[:1] + (1,) + input.shape[2:]:
            raise ValueError(
                "ShapeConstraintLoss: expected a synthetic CT (B, C, H, W[, D]) and an MR body mask (B, 1, H, W[, D]), "
                f"got {tuple(input.shape)} and {tuple(target.shape)}."
            )
        soft, mask = self.soft_mask(input), target.to(input.dtype)
        if self.fill_holes:
            soft, mask = fill_from_four_sides(soft), fill_from_four_sides(mask)
        loss = (soft - mask).abs()
        if self.outside_hinge:
            above = torch.relu(self.to_hu(input) - self.threshold_hu) / (self.window[1] - self.window[0])
            loss = loss + (1.0 - mask) * above
        if self.reduction == LossReduction.MEAN.value:
            return loss.mean()
        if self.reduction == LossReduction.SUM.value:
            return loss.sum()
        return loss
