"""Normalized Gradient Field (NGF) loss: a contrast-sign-invariant edge-alignment loss for MR -> CT synthesis.

Reference: E. Haber and J. Modersitzki, "Intensity gradient based registration and fusion of multi-modal images",
MICCAI 2006, LNCS 4191, pp. 726-733 (and Methods Inf. Med. 46(3), 2007).

For two images ``a`` (prediction) and ``b`` (target), the normalized gradient field of ``a`` is
``n_eps(a) = grad(a) / sqrt(|grad(a)|^2 + eps^2)`` and the per-pixel NGF distance is::

    d(x) = 1 - (n_eps(a) . n_eps(b))^2
         = 1 - (grad(a) . grad(b))^2 / ((|grad(a)|^2 + eps^2) * (|grad(b)|^2 + eps^2))

which lies in ``[0, 1]``. The loss is the (optionally masked) mean of ``d`` over pixels and channels.
"""

from __future__ import annotations

import torch
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

__all__ = ["NGFLoss", "normalized_gradient_field_map"]

DEFAULT_EPS = 0.05


def _spatial_gradients(x: torch.Tensor, spatial_dims: int) -> list[torch.Tensor]:
    """Central differences (unit spacing) along each spatial axis of a (B, C, *spatial) tensor.

    ``torch.gradient`` uses second-order central differences ``(x[i+1] - x[i-1]) / 2`` inside and first-order
    one-sided differences on the first and last sample of each axis.
    """
    dims = tuple(range(2, 2 + spatial_dims))
    return list(torch.gradient(x, dim=dims, edge_order=1))


def normalized_gradient_field_map(a: torch.Tensor, b: torch.Tensor, eps: float, spatial_dims: int) -> torch.Tensor:
    """Per-pixel NGF distance ``1 - (grad a . grad b)^2 / ((|grad a|^2 + eps^2)(|grad b|^2 + eps^2))``.

    ``a`` and ``b`` have shape (B, C, *spatial); the result has the same shape, values in [0, 1].
    No square root is taken, so values and gradients stay finite even where both gradients vanish.
    """
    grad_a = _spatial_gradients(a, spatial_dims)
    grad_b = _spatial_gradients(b, spatial_dims)
    eps2 = eps * eps
    dot = sum(ga * gb for ga, gb in zip(grad_a, grad_b))
    norm_a = sum(ga * ga for ga in grad_a) + eps2
    norm_b = sum(gb * gb for gb in grad_b) + eps2
    return 1.0 - dot * dot / (norm_a * norm_b)


class NGFLoss(_Loss):
    """Normalized Gradient Field loss (Haber & Modersitzki 2006) between a prediction and a target image.

    Per pixel ``x`` (central-difference gradients, unit pixel spacing)::

        d(x) = 1 - (grad(a) . grad(b))^2 / ((|grad(a)|^2 + eps^2) * (|grad(b)|^2 + eps^2))

    i.e. ``1 - cos^2`` of the angle between the two eps-regularised gradient directions. ``d`` is 0 where both
    images have strong, parallel *or anti-parallel* edges and approaches 1 where the edges are orthogonal or
    missing in either image. The loss is the mean of ``d`` over pixels and channels (each channel is compared with
    the same channel of the target), or a mask-weighted mean.

    Contrast sign: the gradient dot product is squared, so flipping the sign of one image (``a -> -a``) or
    inverting it (``a -> 1 - a``) leaves the loss unchanged, and so does any offset or, as long as the gradients
    stay well above ``eps``, any positive or negative scaling. This is what makes NGF suitable for MR <-> CT: cortical
    bone is dark on most MR sequences and bright on CT, air/bone and bone/tissue edges have the opposite contrast
    sign in the two modalities, yet their positions and orientations must agree. NGF therefore rewards edges in
    the right place without asking the MR intensities to look like HU; pair it with an intensity loss (L1) on the
    synthetic CT for the actual HU values.

    Flat regions: where the target gradient is ~0 (air, the inside of homogeneous organs), ``d`` ~ 1 whatever the
    prediction does, because ``(grad(a) . 0)^2 = 0``. With this standard formulation such pixels therefore add a
    constant (their fraction of the image) to the mean, so the loss does not reach 0 even for ``loss(b, b)`` unless
    the target has edges everywhere, and NGF neither rewards nor penalises spurious edges in the prediction inside
    regions flat in the target (that job is left to the intensity loss). The constant does not bias the optimum and
    the gradient w.r.t. the prediction there is finite and ~0 (it is proportional to ``grad(b)``): nothing is
    divided by a vanishing quantity because ``eps^2 > 0`` and no square root is taken. Where the prediction is flat
    but the target has an edge, ``d`` ~ 1 and the gradient pushes the prediction to form that edge.

    Choice of ``eps`` (default 0.05, for images scaled to [-1, 1] with unit pixel spacing): ``eps`` is the gradient
    magnitude below which a gradient counts as noise rather than structure (``|n_eps|^2 = g^2 / (g^2 + eps^2)`` is
    1/2 at ``g = eps``, 0.04 at ``g = eps / 5``, 0.8 at ``g = 2 eps``). Central differences of a sharp edge of
    height ``h`` give ``g ~ h / 2``: air/tissue and bone edges in [-1, 1] images (``h ~ 0.3..2``) give
    ``g ~ 0.15..1``, and still ~0.1 when blurred over a few pixels, so they count fully. Image noise of standard
    deviation ``sigma`` gives central-difference gradient components of std ``sigma / sqrt(2)``, i.e.
    ``|grad| ~ 0.01..0.03`` for the ``sigma ~ 0.01..0.02`` typical of CT (10-30 HU when 1 unit is ~1000-1500 HU)
    and normalized MR; with ``eps = 0.05`` these contribute little (``|n_eps|^2 <~ 0.25``). Haber & Modersitzki
    likewise tie ``eps`` to the noise level. Use a smaller ``eps`` (0.01-0.02) to make faint soft-tissue edges count
    (at the cost of fitting noise), a larger one for noisy data or images scaled to a wider range.

    Args:
        eps: edge-noise threshold ``eps > 0`` in intensity units per pixel (see above). Defaults to 0.05.
        spatial_dims: 2 or 3; if None (default), inferred from the input's number of dimensions (ndim - 2).
        reduction: ``"mean"`` (default): mean of ``d`` over batch, channels and pixels, or, with a mask, the
            mask-weighted mean ``sum(d * m) / sum(m)`` (0 if the mask is empty); ``"sum"``: ``sum(d * m)`` (m = 1
            without a mask); ``"none"``: the per-pixel map ``d * m`` of shape (B, C, *spatial).

    Example:
        >>> loss = NGFLoss()
        >>> pred, target = torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64)
        >>> value = loss(pred, target)  # scalar in [0, 1]
    """

    def __init__(
        self, eps: float = DEFAULT_EPS, spatial_dims: int | None = None, reduction: LossReduction | str = "mean"
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0 or eps == float("inf"):
            raise ValueError(f"NGFLoss: eps must be a finite number > 0, got {eps!r}")
        if spatial_dims is not None and (isinstance(spatial_dims, bool) or spatial_dims not in (2, 3)):
            raise ValueError(f"NGFLoss: spatial_dims must be 2, 3 or None (inferred), got {spatial_dims!r}")
        self.eps = float(eps)
        self.spatial_dims = spatial_dims

    def _check(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> int:
        if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError(
                f"NGFLoss: input and target must be torch tensors, got {type(input).__name__} and "
                f"{type(target).__name__}"
            )
        if input.shape != target.shape:
            raise ValueError(
                f"NGFLoss: input and target must have the same shape, got {tuple(input.shape)} and "
                f"{tuple(target.shape)}"
            )
        spatial_dims = self.spatial_dims if self.spatial_dims is not None else input.ndim - 2
        if spatial_dims not in (2, 3) or input.ndim != spatial_dims + 2:
            expected = "(B, C, H, W) or (B, C, D, H, W)" if self.spatial_dims is None else f"{spatial_dims + 2}D"
            raise ValueError(
                f"NGFLoss: input must be a {expected} tensor (batch, channel, spatial), got shape {tuple(input.shape)}"
            )
        if min(input.shape[2:]) < 2:
            raise ValueError(
                f"NGFLoss: every spatial size must be >= 2 to compute gradients, got shape {tuple(input.shape)}"
            )
        if not input.is_floating_point() or not target.is_floating_point():
            raise TypeError(f"NGFLoss: input and target must be floating point, got {input.dtype} and {target.dtype}")
        if mask is not None:
            if not isinstance(mask, torch.Tensor):
                raise TypeError(f"NGFLoss: mask must be a torch tensor or None, got {type(mask).__name__}")
            b, c = input.shape[:2]
            if (
                mask.ndim != input.ndim
                or mask.shape[0] != b
                or mask.shape[1] not in (1, c)
                or (mask.shape[2:] != input.shape[2:])
            ):
                raise ValueError(
                    f"NGFLoss: mask must have shape (B, 1, *spatial) or (B, C, *spatial) = "
                    f"{(b, 1) + tuple(input.shape[2:])} or {tuple(input.shape)}, got {tuple(mask.shape)}"
                )
        return spatial_dims

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            input: prediction, shape (B, C, H, W) or (B, C, D, H, W).
            target: reference image, same shape as ``input``.
            mask: optional weights of shape (B, 1, *spatial) (broadcast over channels) or (B, C, *spatial):
                binary (e.g. a body mask) or float, non-negative. The gradients are still computed on the full
                images, so a pixel inside the mask next to its border uses its neighbours outside the mask.

        Returns:
            scalar for ``"mean"``/``"sum"``; the (masked) per-pixel map of shape (B, C, *spatial) for ``"none"``.
        """
        spatial_dims = self._check(input, target, mask)
        d = normalized_gradient_field_map(input, target, self.eps, spatial_dims)
        if mask is not None:
            weights = mask.to(dtype=d.dtype).expand_as(d)
            d = d * weights
        if self.reduction == LossReduction.MEAN.value:
            if mask is None:
                return d.mean()
            # an empty mask gives 0 (not NaN): nothing to compare in this sample/patch
            return d.sum() / weights.sum().clamp_min(torch.finfo(d.dtype).tiny)
        if self.reduction == LossReduction.SUM.value:
            return d.sum()
        return d
