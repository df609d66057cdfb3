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

**Depth bands** (optional, ``depth_bands=(e_1, ..., e_n)``): the distributions are compared per band of depth below
the mask's surface instead of over the whole mask, and the band distances averaged::

    d(p) = the number of 3 x 3 (3 x 3 x 3) erosions of the mask that pixel p survives   (0 on the outermost ring)
    band_j = {p : e_j <= d(p) < e_(j+1)},   e_0 = 0, e_(n+1) = infinity
    W1_bands(x, y) = mean over the bands with pixels in both masks of W1(x in band_j, y in band_j)

Depth below the body surface is a coordinate both modalities share without registration, and the CT's intensities
depend on it strongly (in a head: skin, then the skull's bone, then the brain). Over the whole mask, a sCT that puts
the bone one band too far out or in has the right histogram; per band it has not. The edges are in pixels (voxels) of
the images the loss sees, so they belong to a training resolution. Erosion treats the space beyond the image border as
inside the mask, so a crop's edge is not taken for the body's surface.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

__all__ = ["IntensityDistributionLoss"]


class IntensityDistributionLoss(_Loss):
    """Mean over samples of ``W1`` between the masked intensities of two images (see the module docstring).

    Args:
        quantiles: ``K``, the number of quantile levels the distributions are compared at (>= 2).
        mask_threshold: a pixel is inside a mask where the mask is above this value.
        depth_bands: increasing band edges in pixels of depth below the mask's surface (e.g. ``[2, 6, 12, 20]``: bands
            0-1, 2-5, 6-11, 12-19 and 20 on); ``None`` compares the whole masks. Needs both masks.
    """

    def __init__(
        self, quantiles: int = 64, mask_threshold: float = 0.5, depth_bands: Sequence[int] | None = None
    ) -> None:
        super().__init__()
        if int(quantiles) < 2:
            raise ValueError(f"quantiles must be >= 2, got {quantiles}")
        if depth_bands is not None:
            edges = [int(e) for e in depth_bands]
            if not edges or edges[0] < 1 or any(b <= a for a, b in zip(edges, edges[1:])):
                raise ValueError(f"depth_bands must be increasing edges >= 1 (pixels), got {list(depth_bands)}")
            depth_bands = edges
        self.quantiles = int(quantiles)
        self.mask_threshold = float(mask_threshold)
        self.depth_bands = depth_bands

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, x_mask: torch.Tensor | None = None, y_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x``, ``y``: images ``(B, C, *spatial)`` (their spatial sizes may differ); masks shaped like their image
        (or with one channel); without a mask the whole image counts. Returns a scalar."""
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y need the same batch size, got {x.shape[0]} and {y.shape[0]}")
        if self.depth_bands is not None and (x_mask is None or y_mask is None):
            raise ValueError("IntensityDistributionLoss with depth_bands needs both masks")
        levels = (torch.arange(self.quantiles, device=x.device, dtype=torch.float32) + 0.5) / self.quantiles
        x_regions, y_regions = self._regions(x, x_mask), self._regions(y, y_mask)
        distances = []
        for i in range(x.shape[0]):
            per_region = []
            for x_region, y_region in zip(x_regions, y_regions):
                a = x[i].reshape(-1) if x_region is None else x[i][x_region[i].expand_as(x[i])]
                b = y[i].reshape(-1) if y_region is None else y[i][y_region[i].expand_as(y[i])]
                if a.numel() and b.numel():
                    qa, qb = torch.quantile(a.float(), levels), torch.quantile(b.float(), levels)
                    per_region.append((qa - qb).abs().mean())
            # keeps the graph when there is nothing to compare
            distances.append(torch.stack(per_region).mean() if per_region else x[i].sum() * 0.0)
        return torch.stack(distances).mean()

    def _regions(self, image: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor | None]:
        """The boolean masks (B, 1 or C, *spatial) of the regions compared: the whole mask, or its depth bands."""
        if mask is None:
            return [None]
        inside = mask > self.mask_threshold
        if self.depth_bands is None:
            return [inside]
        if inside.ndim not in (4, 5):
            raise ValueError(f"depth_bands need masks (B, C, H, W) or (B, C, D, H, W), got shape {tuple(mask.shape)}")
        pool = F.max_pool2d if inside.ndim == 4 else F.max_pool3d
        eroded, current = [inside], inside.float()
        for _ in range(self.depth_bands[-1]):
            # min-pooling by max-pooling the negation: max_pool pads with -inf, so beyond the border counts as inside
            current = -pool(-current, kernel_size=3, stride=1, padding=1)
            eroded.append(current > 0.5)
        edges = [0, *self.depth_bands]
        bands = [eroded[a] & ~eroded[b] for a, b in zip(edges, edges[1:])]
        return [*bands, eroded[-1]]
