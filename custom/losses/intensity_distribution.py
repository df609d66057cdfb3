"""Intensity-distribution loss: the 1D Wasserstein distance between the intensities of two images inside their masks.

References: C. Villani, "Optimal Transport: Old and New", Springer 2009 (in 1D, W1 is the L1 distance between the
quantile functions); E. Risser, P. Wilmot, C. Barnes, "Stable and controllable neural texture synthesis and style
transfer using histogram losses", arXiv:1701.08893, 2017 (matching intensity histograms as a training loss).

For an image ``x`` with mask ``m_x`` (e.g. a synthetic CT inside its MR's body mask) and an image ``y`` with mask
``m_y`` (a real CT of another patient inside its own body mask), per sample::

    W1(x, y) = integral_0^1 |Q_x(u) - Q_y(u)| du  ~  (1/K) sum_k |Q_x(u_k) - Q_y(u_k)|,   u_k = (k + 1/2) / K

with ``Q`` the empirical quantile function of the masked intensities (``torch.quantile``, linear interpolation; its
gradient reaches the pixels at those quantiles). The images need not show the same anatomy or be registered: the loss
compares only which intensities occur and how often, so it suits unpaired training, where it asks the generator for
the CT's proportions of air, soft tissue and bone inside the body whatever the MR's contrast. A sample whose mask is
empty on either side contributes 0. The loss is in the images' intensity units (e.g. [-1, 1]).
"""

from __future__ import annotations

import torch
from torch.nn.modules.loss import _Loss

__all__ = ["IntensityDistributionLoss"]


class IntensityDistributionLoss(_Loss):
    """Mean over samples of ``W1`` between the masked intensities of two images (see the module docstring).

    Args:
        quantiles: ``K``, the number of quantile levels the distributions are compared at (>= 2).
        mask_threshold: a pixel is inside a mask where the mask is above this value.
    """

    def __init__(self, quantiles: int = 64, mask_threshold: float = 0.5) -> None:
        super().__init__()
        if int(quantiles) < 2:
            raise ValueError(f"quantiles must be >= 2, got {quantiles}")
        self.quantiles = int(quantiles)
        self.mask_threshold = float(mask_threshold)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, x_mask: torch.Tensor | None = None, y_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x``, ``y``: images ``(B, C, *spatial)`` (their spatial sizes may differ); masks shaped like their image
        (or with one channel); without a mask the whole image counts. Returns a scalar."""
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y need the same batch size, got {x.shape[0]} and {y.shape[0]}")
        levels = (torch.arange(self.quantiles, device=x.device, dtype=torch.float32) + 0.5) / self.quantiles
        distances = []
        for i in range(x.shape[0]):
            a, b = self._inside(x[i], x_mask, i), self._inside(y[i], y_mask, i)
            if a.numel() == 0 or b.numel() == 0:
                distances.append(x[i].sum() * 0.0)  # keeps the graph; nothing to compare
                continue
            qa, qb = torch.quantile(a.float(), levels), torch.quantile(b.float(), levels)
            distances.append((qa - qb).abs().mean())
        return torch.stack(distances).mean()

    def _inside(self, image: torch.Tensor, mask: torch.Tensor | None, i: int) -> torch.Tensor:
        if mask is None:
            return image.reshape(-1)
        inside = (mask[i] > self.mask_threshold).expand_as(image)
        return image[inside]
