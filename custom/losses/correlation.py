"""Correlation-coefficient loss: rewards a synthetic image whose intensities co-vary with its source, whatever the sign.

Reference: Y. Ge et al., "Unpaired whole-body MR to CT synthesis with correlation coefficient constrained adversarial
learning", SPIE Medical Imaging 2019 (the CC loss between an image and its translation); K. Pearson, "Notes on
regression and inheritance in the case of two parents", Proc. R. Soc. London 58, 1895 (the coefficient).

For an input ``x`` (e.g. the synthetic CT) and a target ``y`` (the MR it was made from), optionally weighted by a mask
``w`` (``w = 1`` without a mask), over the elements ``i`` of one sample (or of the whole batch)::

    mean_x = sum_i w_i x_i / sum_i w_i                                  (mean_y alike)
    cov    = sum_i w_i (x_i - mean_x)(y_i - mean_y) / sum_i w_i
    var_x  = sum_i w_i (x_i - mean_x)^2 / sum_i w_i                     (var_y alike)
    r      = cov / sqrt((var_x + eps) (var_y + eps))
    loss   = 1 - r^2      (default: sign-invariant)     or     1 - r     (``squared=False``)

MR and CT of the same anatomy are strongly but not monotonically related (bone is dark in MR, bright in CT), so the
squared form, which is 0 for ``y = a x + b`` with any ``a != 0``, is the default; ``1 - r`` (in [0, 2]) also asks for a
positive relation. Both are invariant to offset and positive scaling of either image.

Zero variance: ``r`` is undefined when ``x`` or ``y`` is constant (a blank slice, a collapsed generator). The variance
floor ``eps`` (squared intensity units, default 1e-6, i.e. negligible for images in [-1, 1], whose variance is
~0.01-0.5) makes ``r = 0`` there, so a constant image counts as uncorrelated (loss 1) and values and gradients stay
finite; nothing is divided by zero and no square root of zero is taken. Because ``cov <= sqrt(var_x var_y)``,
``|r| <= 1`` still holds. For ``x = y`` the loss is ``1 - (var / (var + eps))^2 ~ 2 eps / var``, not exactly 0.
"""

from __future__ import annotations

import torch
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

__all__ = ["CorrelationCoefficientLoss", "correlation_coefficient"]


def correlation_coefficient(
    x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None, eps: float = 1e-6
) -> torch.Tensor:
    """Weighted Pearson ``r`` of each row of ``x`` and ``y`` (shape ``(N, M)``), with the variance floor ``eps``
    (see the module docstring); shape ``(N,)``. ``weights`` (``(N, M)``, >= 0) default to 1."""
    w = torch.ones_like(x) if weights is None else weights
    total = w.sum(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)  # an empty row: every sum is 0, r = 0
    dx = x - (w * x).sum(dim=1, keepdim=True) / total
    dy = y - (w * y).sum(dim=1, keepdim=True) / total
    cov = (w * dx * dy).sum(dim=1) / total[:, 0]
    var_x = (w * dx * dx).sum(dim=1) / total[:, 0]
    var_y = (w * dy * dy).sum(dim=1) / total[:, 0]
    return cov / torch.sqrt((var_x + eps) * (var_y + eps))


class CorrelationCoefficientLoss(_Loss):
    """``1 - r^2`` (or ``1 - r``) of the Pearson correlation between two images (see the module docstring).

    Args:
        squared: ``1 - r^2`` (default, sign-invariant, in [0, 1]) or, if False, ``1 - r`` (in [0, 2]).
        per_sample: one ``r`` per sample over its channels and pixels (default), or, if False, one ``r`` over the
            whole batch (the batch's samples pooled: a shared offset between samples then counts as correlation).
        eps: variance floor > 0 in squared intensity units (zero variance gives ``r = 0``, see the module docstring).
        reduction: ``"mean"`` (default) or ``"sum"`` over the samples, or ``"none"``: the per-sample losses, shape
            ``(B,)`` (``(1,)`` when not ``per_sample``).

    Example:
        >>> loss = CorrelationCoefficientLoss()
        >>> mr = torch.rand(2, 1, 32, 32)
        >>> float(loss(-3 * mr + 1, mr)) < 1e-4  # a negated, scaled, shifted copy: perfectly correlated
        True
    """

    def __init__(
        self,
        squared: bool = True,
        per_sample: bool = True,
        eps: float = 1e-6,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < float("inf"):
            raise ValueError(f"CorrelationCoefficientLoss: eps must be a finite number > 0, got {eps!r}.")
        self.squared, self.per_sample, self.eps = bool(squared), bool(per_sample), float(eps)

    def _check(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> None:
        if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError(
                f"CorrelationCoefficientLoss: input and target must be tensors, got {type(input).__name__} and "
                f"{type(target).__name__}."
            )
        if input.shape != target.shape or input.ndim < 2:
            raise ValueError(
                "CorrelationCoefficientLoss: input and target must have the same shape (B, C, *spatial), got "
                f"{tuple(input.shape)} and {tuple(target.shape)}."
            )
        if mask is not None:
            shape_ok = mask.ndim == input.ndim and mask.shape[0] == input.shape[0] and mask.shape[2:] == input.shape[2:]
            if not shape_ok or mask.shape[1] not in (1, input.shape[1]):
                raise ValueError(
                    f"CorrelationCoefficientLoss: mask must have shape (B, 1 or C, *spatial) for input "
                    f"{tuple(input.shape)}, got {tuple(mask.shape)}."
                )

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: (B, C, *spatial), e.g. the synthetic CT.
            target: the same shape, e.g. the MR it was made from.
            mask: optional weights >= 0, (B, 1, *spatial) or (B, C, *spatial): ``r`` inside the mask only. A sample
                with an empty mask counts as uncorrelated (loss 1, no gradient).
        """
        self._check(input, target, mask)
        rows = input.shape[0] if self.per_sample else 1
        x = input.float().reshape(rows, -1)
        y = target.float().reshape(rows, -1)
        w = None if mask is None else mask.float().expand_as(input).reshape(rows, -1)
        r = correlation_coefficient(x, y, w, self.eps)
        loss = 1.0 - (r * r if self.squared else r)
        if self.reduction == LossReduction.MEAN.value:
            return loss.mean()
        if self.reduction == LossReduction.SUM.value:
            return loss.sum()
        return loss
