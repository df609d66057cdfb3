"""Image similarity metrics of the SynthRAD challenges, for synthetic CT (sCT) against the reference CT.

Two protocols are implemented, both computed in float64 inside a body mask (binarised as ``mask > 0``):

SynthRAD 2023 (Huijben et al., "Generating synthetic computed tomography for radiotherapy: SynthRAD2023 challenge
report", Medical Image Analysis 2024), HU range ``[-1024, 3000]``:

* ``MAE  = sum(|ct - sct| * m) / sum(m)`` (no clipping);
* ``PSNR = 10 log10(R^2 / MSE)``, MSE over the mask voxels after clipping both images to the range,
  ``R`` = range width (4024 HU);
* ``SSIM``: both images clipped to the range, voxels outside the mask set to the range minimum, shifted by
  ``-min``; scikit-image ``structural_similarity`` (uniform 7^d window, K1 = 0.01, K2 = 0.03, sample covariance,
  ``data_range = R``); the SSIM map is averaged over the mask voxels after cropping 3 voxels from every border.

SynthRAD 2025 evaluation, HU range ``[-1024, 3071]``: MAE and PSNR as above (``R`` = 4095), and MS-SSIM:

* images clipped, outside-mask voxels set to the minimum, shifted by ``-min``; every axis padded to at least
  97 voxels with edge values (``(97 - d) // 2`` before, the rest after; the mask too);
* 5 levels with weights ``w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``; at level ``i`` the map is
  ``L^w_i * C^w_i * S^w_i`` with a uniform 7^d window, sample covariance, ``C1 = (0.01 R)^2``,
  ``C2 = (0.03 R)^2``, ``C3 = C2 / 2`` and
  ``L = max(0, (2 ux uy + C1) / (ux^2 + uy^2 + C1))``, ``C = max(0, (2 sx sy + C2) / (vx + vy + C2))``,
  ``S = max(0, (vxy + C3) / (sx sy + C3))``, ``s = sqrt(max(v, 0))``;
* level value = mean of the map over the mask voxels after cropping 3 voxels from every border; between levels
  both images are convolved with a 2^d box of ``1 / 2^d`` (``scipy.signal.fftconvolve(mode="same")``) and
  decimated by 2 along every axis, the mask is only decimated;
* result = product over the levels of ``clip(level value, 0, 1)``.

Extras (not part of the challenges): ``local_ssim`` (SSIM 2023 averaged in a second region mask, e.g. the cranial
region, intersected with the body mask) and ``bone_dice`` (Dice of ``CT >= t`` vs ``sCT >= t``).

8-bit mode (2-D PNG slices): pass ``value_range=(0, 255)``. Every metric then uses that range: PSNR with
``R = 255``, SSIM/MS-SSIM with ``data_range = 255`` and background value 0 instead of -1024. All functions work for
2-D and 3-D arrays (the windows become 7x7 and 2x2 in 2-D); MS-SSIM pads small images to 97 pixels per axis, so
it is defined for 2-D slices too.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.ndimage import uniform_filter
from skimage.metrics import structural_similarity

__all__ = [
    "SYNTHRAD2023_RANGE",
    "SYNTHRAD2025_RANGE",
    "EIGHT_BIT_RANGE",
    "MS_SSIM_WEIGHTS",
    "PROTOCOLS",
    "mae",
    "psnr",
    "ssim",
    "ms_ssim",
    "box_downsample",
    "local_ssim",
    "bone_dice",
    "compute_metrics",
    "protocol_range",
    "resolve_protocols",
]

SYNTHRAD2023_RANGE = (-1024.0, 3000.0)
SYNTHRAD2025_RANGE = (-1024.0, 3071.0)
EIGHT_BIT_RANGE = (0.0, 255.0)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 7
MS_SSIM_MIN_SIZE = 97
K1, K2 = 0.01, 0.03

# protocol -> (default HU range, name of the structural metric)
PROTOCOLS = {
    "synthrad2023": (SYNTHRAD2023_RANGE, "ssim"),
    "synthrad2025": (SYNTHRAD2025_RANGE, "ms_ssim"),
}


# ----------------------------------------------------------------------------------------------------------- checks
def _as_float(array: np.ndarray, name: str) -> np.ndarray:
    out = np.asarray(array, dtype=np.float64)
    if out.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2D or 3D array, got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return out


def _check_range(value_range: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be two numbers (lo, hi), got {value_range!r}") from None
    if not hi > lo:
        raise ValueError(f"value_range must have hi > lo, got {value_range!r}")
    return lo, hi


def _prepare(
    pred: np.ndarray, ct: np.ndarray, mask: np.ndarray | None, require_mask: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 copies of pred/ct and a boolean mask (whole image when ``mask`` is None), with argument checks."""
    p = _as_float(pred, "pred")
    c = _as_float(ct, "ct")
    if p.shape != c.shape:
        raise ValueError(f"pred and ct have different shapes: pred {p.shape} vs ct {c.shape}")
    if mask is None:
        m = np.ones(c.shape, dtype=bool)
    else:
        m = np.asarray(mask)
        if m.shape != c.shape:
            raise ValueError(f"mask and ct have different shapes: mask {m.shape} vs ct {c.shape}")
        m = m > 0
        if require_mask and not m.any():
            raise ValueError("mask is empty (no voxel > 0)")
    return p, c, m


def _crop(array: np.ndarray, pad: int) -> np.ndarray:
    return array[tuple(slice(pad, s - pad) for s in array.shape)]


def _masked_mean(values: np.ndarray, mask: np.ndarray, what: str) -> float:
    pad = (WIN_SIZE - 1) // 2
    v, m = _crop(values, pad), _crop(mask, pad)
    if not m.any():
        raise ValueError(f"{what}: the mask has no voxel more than {pad} voxels away from the image border")
    return float(v[m].mean(dtype=np.float64))


def _normalise(image: np.ndarray, mask: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Clip to [lo, hi], set outside-mask voxels to lo, shift so that lo becomes 0."""
    out = np.clip(image, lo, hi)
    out[~mask] = lo
    out -= lo
    return out


# ---------------------------------------------------------------------------------------------------------- metrics
def mae(pred: np.ndarray, ct: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error inside the mask, no clipping: ``sum(|ct - pred| * m) / sum(m)``."""
    p, c, m = _prepare(pred, ct, mask)
    return float(np.abs(c[m] - p[m]).sum() / m.sum())


def psnr(
    pred: np.ndarray,
    ct: np.ndarray,
    mask: np.ndarray | None = None,
    value_range: Sequence[float] = SYNTHRAD2023_RANGE,
) -> float:
    """``10 log10(R^2 / MSE)`` over the mask voxels after clipping both images to ``value_range`` (R = its width).

    Returns ``inf`` when the clipped images are identical inside the mask (MSE = 0).
    """
    lo, hi = _check_range(value_range)
    p, c, m = _prepare(pred, ct, mask)
    mse = float(np.mean((np.clip(c[m], lo, hi) - np.clip(p[m], lo, hi)) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10((hi - lo) ** 2 / mse))


def _ssim_map(p: np.ndarray, c: np.ndarray, m: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Full SSIM map of the SynthRAD 2023 definition (inputs already checked, float64)."""
    if min(c.shape) < WIN_SIZE:
        raise ValueError(f"image shape {c.shape} is too small for SSIM: every axis needs at least {WIN_SIZE} voxels")
    x = _normalise(c, m, lo, hi)
    y = _normalise(p, m, lo, hi)
    # scikit-image defaults: uniform window 7, K1 = 0.01, K2 = 0.03, sample covariance.
    _, smap = structural_similarity(x, y, win_size=WIN_SIZE, data_range=hi - lo, full=True)
    return smap


def ssim(
    pred: np.ndarray,
    ct: np.ndarray,
    mask: np.ndarray | None = None,
    value_range: Sequence[float] = SYNTHRAD2023_RANGE,
) -> float:
    """SSIM of the SynthRAD 2023 protocol (see the module docstring), averaged over the mask after a 3-voxel crop."""
    lo, hi = _check_range(value_range)
    p, c, m = _prepare(pred, ct, mask)
    return _masked_mean(_ssim_map(p, c, m, lo, hi), m, "SSIM")


def local_ssim(
    pred: np.ndarray,
    ct: np.ndarray,
    mask: np.ndarray | None,
    region_mask: np.ndarray,
    value_range: Sequence[float] = SYNTHRAD2023_RANGE,
) -> float:
    """SSIM (2023 definition) averaged inside ``region_mask & mask`` instead of the body mask.

    The images are prepared with the body ``mask`` exactly as for :func:`ssim` (outside-body voxels set to the range
    minimum); only the voxels over which the SSIM map is averaged change. ``mask=None`` means the whole image.
    """
    lo, hi = _check_range(value_range)
    p, c, m = _prepare(pred, ct, mask)
    region = np.asarray(region_mask)
    if region.shape != c.shape:
        raise ValueError(f"region_mask and ct have different shapes: region_mask {region.shape} vs ct {c.shape}")
    region = (region > 0) & m
    if not region.any():
        raise ValueError("region_mask is empty inside the body mask")
    return _masked_mean(_ssim_map(p, c, m, lo, hi), region, "local SSIM")


def _pad_to(array: np.ndarray, size: int) -> np.ndarray:
    widths = [((size - s) // 2, size - s - (size - s) // 2) if s < size else (0, 0) for s in array.shape]
    return np.pad(array, widths, mode="edge")


def box_downsample(array: np.ndarray) -> np.ndarray:
    """``fftconvolve(array, box, mode="same")[::2, ::2, ...]`` with ``box`` = 2^d ones / 2^d, computed directly.

    With a kernel of size 2, ``mode="same"`` keeps the first ``n`` samples of the full convolution, so along each axis
    ``out[j] = (a[2j - 1] + a[2j]) / 2`` with ``a[-1] = 0`` (zero padding in front). This is the same linear map as
    the FFT convolution (equal up to floating-point rounding, ~1e-12 relative) but a few times faster and leaner on
    256^3 volumes.
    """
    out = np.asarray(array, dtype=np.float64)
    for axis in range(out.ndim):
        n = out.shape[axis]
        n_out = (n + 1) // 2
        padded = np.concatenate([np.zeros_like(out.take([0], axis=axis)), out], axis=axis)
        even = padded.take(np.arange(0, 2 * n_out, 2), axis=axis)
        odd = padded.take(np.arange(1, 2 * n_out, 2), axis=axis)
        out = (even + odd) * 0.5
    return out


def ms_ssim(
    pred: np.ndarray,
    ct: np.ndarray,
    mask: np.ndarray | None = None,
    value_range: Sequence[float] = SYNTHRAD2025_RANGE,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
) -> float:
    """Multi-scale SSIM of the SynthRAD 2025 evaluation (see the module docstring).

    The 2x box filter + decimation between levels uses :func:`box_downsample`, equal to the defining
    ``scipy.signal.fftconvolve(..., mode="same")[::2, ...]`` up to rounding.
    """
    lo, hi = _check_range(value_range)
    p, c, m = _prepare(pred, ct, mask)
    data_range = hi - lo
    x = _pad_to(_normalise(c, m, lo, hi), MS_SSIM_MIN_SIZE)
    y = _pad_to(_normalise(p, m, lo, hi), MS_SSIM_MIN_SIZE)
    m = _pad_to(m, MS_SSIM_MIN_SIZE)
    ndim = x.ndim
    n = WIN_SIZE**ndim
    cov_norm = n / (n - 1.0)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    c3 = c2 / 2.0
    result = 1.0
    for level, w in enumerate(weights):
        if level > 0:
            x, y = box_downsample(x), box_downsample(y)
            m = m[(slice(None, None, 2),) * ndim]
        # written to keep few full-size temporaries alive: real volumes are ~256x256x180 voxels
        ux = uniform_filter(x, size=WIN_SIZE)
        uy = uniform_filter(y, size=WIN_SIZE)
        vx = uniform_filter(x * x, size=WIN_SIZE) - ux * ux
        vx *= cov_norm
        vy = uniform_filter(y * y, size=WIN_SIZE) - uy * uy
        vy *= cov_norm
        vxy = uniform_filter(x * y, size=WIN_SIZE) - ux * uy
        vxy *= cov_norm
        # L = max(0, (2 ux uy + C1) / (ux^2 + uy^2 + C1)), raised to w
        level_map = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1)
        del ux, uy
        np.maximum(level_map, 0.0, out=level_map)
        np.power(level_map, w, out=level_map)
        sxsy = np.sqrt(np.maximum(vx, 0.0)) * np.sqrt(np.maximum(vy, 0.0))
        # C = max(0, (2 sx sy + C2) / (vx + vy + C2))
        term = (2 * sxsy + c2) / (vx + vy + c2)
        del vx, vy
        np.maximum(term, 0.0, out=term)
        level_map *= np.power(term, w, out=term)
        # S = max(0, (vxy + C3) / (sx sy + C3))
        term = (vxy + c3) / (sxsy + c3)
        del vxy, sxsy
        np.maximum(term, 0.0, out=term)
        level_map *= np.power(term, w, out=term)
        del term
        value = _masked_mean(level_map, m, f"MS-SSIM level {level + 1}")
        result *= float(np.clip(value, 0.0, 1.0))
    return float(result)


def bone_dice(pred: np.ndarray, ct: np.ndarray, mask: np.ndarray | None = None, threshold: float = 250.0) -> float:
    """Dice of the bone masks ``ct >= threshold`` and ``pred >= threshold`` (inside ``mask`` if given).

    ``2 |A & B| / (|A| + |B|)``; 1.0 when both are empty (no bone in either image: they agree). The threshold is in
    image units (HU for CT; grey levels in 8-bit mode, where 250 HU has no fixed meaning).
    """
    p, c, m = _prepare(pred, ct, mask, require_mask=False)
    a = (c >= threshold) & m
    b = (p >= threshold) & m
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return float(2.0 * np.count_nonzero(a & b) / total)


# ------------------------------------------------------------------------------------------------------ entry point
def protocol_range(protocol: str, value_range: Sequence[float] | None = None) -> tuple[float, float]:
    """The value range used by ``protocol``: ``value_range`` when given, otherwise the protocol's HU range."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}, expected one of {sorted(PROTOCOLS)} or 'all'")
    return _check_range(PROTOCOLS[protocol][0] if value_range is None else value_range)


def resolve_protocols(protocol: str | Sequence[str]) -> tuple[str, ...]:
    """``"all"`` -> both protocols; a name or a sequence of names -> checked tuple of names."""
    names = tuple(PROTOCOLS) if protocol == "all" else (protocol,) if isinstance(protocol, str) else tuple(protocol)
    if not names:
        raise ValueError("no protocol given")
    for name in names:
        protocol_range(name)  # raises on unknown names
    return names


def compute_metrics(
    pred: np.ndarray,
    ct: np.ndarray,
    mask: np.ndarray | None,
    protocol: str | Sequence[str] = "synthrad2023",
    value_range: Sequence[float] | None = None,
    region_mask: np.ndarray | None = None,
    bone_threshold: float = 250.0,
) -> dict[str, float]:
    """All metrics of one case.

    Args:
        pred: synthetic CT (2-D or 3-D array).
        ct: reference CT, same shape.
        mask: body mask (``> 0`` inside); ``None`` = whole image.
        protocol: ``"synthrad2023"`` (MAE, PSNR, SSIM), ``"synthrad2025"`` (MAE, PSNR, MS-SSIM), or ``"all"`` /
            a sequence of protocol names.
        value_range: ``(lo, hi)`` replacing the protocols' HU ranges, e.g. ``(0, 255)`` for 8-bit PNG slices.
        region_mask: optional second region (e.g. cranial region); adds ``"local_ssim"`` (SSIM 2023 definition,
            in the 2023 HU range or ``value_range``, averaged in ``region_mask & mask``).
        bone_threshold: threshold of ``"bone_dice"`` in image units (HU by default).

    Returns:
        One protocol: ``{"mae", "psnr", "ssim" | "ms_ssim", "bone_dice"}`` plus ``"local_ssim"`` when
        ``region_mask`` is given. Several protocols: the protocol metrics are prefixed with the protocol name
        (``"synthrad2023_mae"``, ``"synthrad2023_psnr"``, ``"synthrad2023_ssim"``, ``"synthrad2025_mae"``, ...);
        ``"bone_dice"`` and ``"local_ssim"`` do not depend on the protocol and are never prefixed.

    Raises:
        ValueError: different shapes, empty mask, NaN/inf values, unknown protocol, bad range.
    """
    names = resolve_protocols(protocol)
    p, c, m = _prepare(pred, ct, mask)  # checks once, with clear messages
    region = None
    if region_mask is not None:
        region = np.asarray(region_mask)
        if region.shape != c.shape:
            raise ValueError(f"region_mask and ct have different shapes: region_mask {region.shape} vs ct {c.shape}")
        region = (region > 0) & m
        if not region.any():
            raise ValueError("region_mask is empty inside the body mask")
    ssim_range = protocol_range("synthrad2023", value_range)
    # the SSIM map of the 2023 definition serves both "ssim" and "local_ssim": compute it once.
    smap = _ssim_map(p, c, m, *ssim_range) if ("synthrad2023" in names or region is not None) else None
    abs_err = mae(p, c, m)
    out: dict[str, float] = {}
    for name in names:
        lo, hi = protocol_range(name, value_range)
        prefix = f"{name}_" if len(names) > 1 else ""
        out[prefix + "mae"] = abs_err
        out[prefix + "psnr"] = psnr(p, c, m, (lo, hi))
        if PROTOCOLS[name][1] == "ssim":  # synthrad2023: its range is ssim_range
            out[prefix + "ssim"] = _masked_mean(smap, m, "SSIM")
        else:
            out[prefix + "ms_ssim"] = ms_ssim(p, c, m, (lo, hi))
    out["bone_dice"] = bone_dice(p, c, m, bone_threshold)
    if region is not None:
        out["local_ssim"] = _masked_mean(smap, region, "local SSIM")
    return out
