"""The gamma index of an evaluated dose against a reference dose (Low, Harms, Mutic & Purdy, "A technique for the
quantitative evaluation of dose distributions", Med. Phys. 25, 1998), global form:

    gamma(r) = min over r' of sqrt( |r' - r|^2 / dta^2 + (D_eval(r') - D_ref(r))^2 / dD^2 ),
    dD = dose_percent / 100 * max(D_ref)

over the reference points with D_ref >= threshold_percent / 100 * max(D_ref) (the usual 10 % low-dose cut-off); a
point passes when gamma <= 1. The evaluated dose between voxels is linearly interpolated: the search runs over offsets
r' - r on a lattice of step dta / ``steps_per_dta`` inside the ball of radius ``max_gamma * dta`` (a gamma <= g needs
|r' - r| <= g * dta, so the pass rate is exact up to that sampling), shifting the whole evaluated volume once per
offset. Gammas above ``max_gamma`` are reported as ``max_gamma``.

For a linear reference ramp of gradient g and an evaluated dose offset by a constant d, gamma = |d| / sqrt(dD^2 +
g^2 dta^2) everywhere (the test's analytic case).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from custom.errors import InputError

__all__ = ["gamma_index", "gamma_pass_rate"]


def _offsets(spacing: np.ndarray, radius_mm: float, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (in voxels, one row each) on a lattice of ``step_mm`` within ``radius_mm``, nearest first, and their
    lengths in mm."""
    n = int(np.floor(radius_mm / step_mm + 1e-9))
    axes = [np.arange(-n, n + 1) * step_mm] * len(spacing)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(spacing))
    distance = np.linalg.norm(grid, axis=1)
    keep = distance <= radius_mm + 1e-9
    grid, distance = grid[keep], distance[keep]
    return (grid / spacing)[np.argsort(distance, kind="stable")], np.sort(distance)


def gamma_index(
    reference: np.ndarray,
    evaluated: np.ndarray,
    spacing: Sequence[float],
    dose_percent: float,
    dta_mm: float,
    threshold_percent: float = 10.0,
    steps_per_dta: int = 5,
    max_gamma: float = 1.5,
) -> np.ndarray:
    """The global gamma index of ``evaluated`` against ``reference`` (same grid, voxel ``spacing`` in mm per axis).

    Returns:
        float32 array of the reference's shape: gamma (capped at ``max_gamma``) at the points above the low-dose
        threshold, NaN elsewhere.

    Raises:
        InputError: shapes differ, a spacing per axis is missing or not positive, non-finite doses, a reference without
            dose, or criteria that are not positive.
    """
    from scipy.ndimage import shift

    reference = np.asarray(reference, dtype=np.float64)
    evaluated = np.asarray(evaluated, dtype=np.float64)
    spacing = np.asarray(spacing, dtype=np.float64)
    if reference.shape != evaluated.shape:
        raise InputError(f"gamma: reference {reference.shape} and evaluated {evaluated.shape} doses differ in shape")
    if spacing.shape != (reference.ndim,) or np.any(spacing <= 0):
        raise InputError(f"gamma: expected {reference.ndim} positive voxel sizes, got {list(spacing)}")
    if min(dose_percent, dta_mm, steps_per_dta, max_gamma) <= 0:
        raise InputError("gamma: the dose criterion, distance, steps and max_gamma must be positive")
    if not (np.all(np.isfinite(reference)) and np.all(np.isfinite(evaluated))):
        raise InputError("gamma: the doses have NaN or infinite values")
    peak = float(reference.max())
    if peak <= 0:
        raise InputError("gamma: the reference dose is zero everywhere")
    dose_tolerance = dose_percent / 100.0 * peak
    scored = reference >= threshold_percent / 100.0 * peak
    # only the scored points' neighbourhood matters: crop to their box plus the search radius
    margin = np.ceil(max_gamma * dta_mm / spacing).astype(int) + 1
    where = np.argwhere(scored)
    box = tuple(
        slice(max(0, lo - m), min(n, hi + m + 1))
        for lo, hi, m, n in zip(where.min(0), where.max(0), margin, reference.shape)
    )
    ref, ev, inside = reference[box], evaluated[box], scored[box]
    best = np.full(ref.shape, max_gamma**2)
    offsets, distances = _offsets(spacing, max_gamma * dta_mm, dta_mm / steps_per_dta)
    for offset, distance in zip(offsets, distances):
        distance_term = (distance / dta_mm) ** 2
        if distance_term >= best[inside].max():
            break  # offsets come nearest first: no farther one can lower any gamma
        # shift(ev, -o)[r] = ev(r + o): the evaluated dose at the offset point, linearly interpolated
        moved = ev if not offset.any() else shift(ev, -offset, order=1, mode="nearest", prefilter=False)
        np.minimum(best, distance_term + ((moved - ref) / dose_tolerance) ** 2, out=best)
    gamma = np.full(reference.shape, np.nan, dtype=np.float32)
    gamma[box] = np.where(inside, np.sqrt(best), np.nan)
    return gamma


def gamma_pass_rate(
    reference: np.ndarray,
    evaluated: np.ndarray,
    spacing: Sequence[float],
    dose_percent: float,
    dta_mm: float,
    threshold_percent: float = 10.0,
    steps_per_dta: int = 5,
) -> float:
    """The percentage of the scored reference points (above the low-dose threshold) with gamma <= 1."""
    # gammas above 1 only need to be known as such: search to just past 1
    gamma = gamma_index(reference, evaluated, spacing, dose_percent, dta_mm, threshold_percent, steps_per_dta, 1.01)
    scored = gamma[np.isfinite(gamma)]
    return float(100.0 * np.mean(scored <= 1.0))
