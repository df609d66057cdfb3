"""Water-equivalent path length (WEPL) along a beam, and the proton range difference it predicts between a CT and its
sCT: a dose surrogate that needs no dose engine.

For a parallel beam along an array axis (entering at one face, voxel size d along the axis, relative stopping power
SPR_j of the voxels it crosses), the WEPL at the far boundary of voxel k and at the centre of voxel k are

    W_{k+1} = sum_{j<=k} SPR_j d,        WEPL(centre of k) = W_k + SPR_k d / 2

exact for voxel-wise constant stopping power. A proton beam planned on the CT to stop at the target's distal edge has
the water-equivalent range R = W_CT(distal edge) on each ray through the target; on the sCT the same beam stops where
W_sCT reaches R. Per ray:

    dWEPL = W_sCT(distal edge) - W_CT(distal edge)                 (mm of water; > 0: the sCT stops protons more)
    dz    = z_sCT(R) - z_CT(R),   z(R) = the depth where W = R     (mm; < 0: the beam stops short of the edge)

(W is piecewise linear in depth, so z(R) is found exactly between two voxel boundaries.) For a slab of thickness t
whose stopping power the sCT over-states by s upstream of the target in water, dWEPL = s t and dz = -s t. The WEPL
and range differences are the proton-specific check of an sCT beside the dose comparison (as in the SynthRAD
challenges' dosimetric evaluation); they need only the two images and a stopping-power table. Beams here run along
the array's axes (gantry angles in steps of 90 degrees in the axial plane of an axis-aligned volume); oblique beams
belong to the dose engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from custom.errors import InputError

__all__ = ["range_difference", "wepl_map"]


def _along(volume: np.ndarray, axis: int, direction: int) -> np.ndarray:
    """The volume with the beam axis last and the beam entering at index 0."""
    if axis not in range(volume.ndim):
        raise InputError(f"beam axis {axis}: the volume has axes 0..{volume.ndim - 1}")
    if direction not in (1, -1):
        raise InputError(f"beam direction {direction}: expected +1 (entering at index 0) or -1 (at the last index)")
    moved = np.moveaxis(volume, axis, -1)
    return moved if direction == 1 else moved[..., ::-1]


def _back(volume: np.ndarray, axis: int, direction: int) -> np.ndarray:
    volume = volume if direction == 1 else volume[..., ::-1]
    return np.moveaxis(volume, -1, axis)


def _boundaries(spr: np.ndarray, step: float) -> np.ndarray:
    """W at the voxel boundaries along the last axis: W_0 = 0, W_{k+1} = W_k + SPR_k d (float64)."""
    cumulative = np.cumsum(spr.astype(np.float64) * step, axis=-1)
    return np.concatenate([np.zeros(spr.shape[:-1] + (1,)), cumulative], axis=-1)


def wepl_map(spr: np.ndarray, spacing: Sequence[float], axis: int, direction: int = 1) -> np.ndarray:
    """The WEPL (mm of water) from the beam's entry face to the centre of every voxel, for a beam along ``axis``
    entering at index 0 (``direction`` +1) or at the last index (-1). float32, the shape of ``spr``."""
    spr = np.asarray(spr)
    if spr.ndim != len(spacing):
        raise InputError(f"stopping power of {spr.ndim} dimensions with a spacing of {len(spacing)}")
    along = _along(spr, axis, direction)
    step = float(spacing[axis])
    centres = _boundaries(along, step)[..., :-1] + along * (step / 2)
    return _back(centres, axis, direction).astype(np.float32)


def _depth_of(boundaries: np.ndarray, spr: np.ndarray, value: float, step: float) -> float:
    """The depth (mm from the entry face) where the piecewise-linear W of one ray reaches ``value``; NaN when the ray
    leaves the volume first."""
    k = int(np.searchsorted(boundaries, value, side="right")) - 1  # W_k <= value < W_{k+1}
    if k >= len(spr):
        return float("nan")
    return k * step + (value - boundaries[k]) / max(float(spr[k]), 1e-12)


def range_difference(
    ct_spr: np.ndarray,
    sct_spr: np.ndarray,
    target: np.ndarray,
    spacing: Sequence[float],
    axis: int,
    direction: int = 1,
) -> dict[str, float]:
    """Per ray through the target, the WEPL and geometric range differences at its distal edge (module docstring),
    summarised over the rays: mean, mean absolute and largest absolute dWEPL and dz (mm), the number of rays, and how
    many of them leave the sCT before reaching the CT's range (their dz is left out).

    Raises:
        InputError: volumes of different shapes, or an empty target.
    """
    ct_spr, sct_spr, target = np.asarray(ct_spr), np.asarray(sct_spr), np.asarray(target) > 0
    if not (ct_spr.shape == sct_spr.shape == target.shape):
        raise InputError(f"CT {ct_spr.shape}, sCT {sct_spr.shape} and target {target.shape} differ in shape")
    if not target.any():
        raise InputError("the target mask is empty")
    ct, sct, tgt = (_along(v, axis, direction) for v in (ct_spr, sct_spr, target))
    step = float(spacing[axis])
    ct_w, sct_w = _boundaries(ct, step), _boundaries(sct, step)
    rays = np.argwhere(tgt.any(axis=-1))
    d_wepl, d_depth, escaped = [], [], 0
    for ray in map(tuple, rays):
        distal = int(np.flatnonzero(tgt[ray])[-1]) + 1  # the far boundary of the last target voxel
        reach = ct_w[ray][distal]
        d_wepl.append(sct_w[ray][distal] - reach)
        depth = _depth_of(sct_w[ray], sct[ray], reach, step)
        if np.isnan(depth):
            escaped += 1
        else:
            d_depth.append(depth - distal * step)
    d_wepl_a, d_depth_a = np.asarray(d_wepl), np.asarray(d_depth)
    summary = {"rays": int(len(rays)), "rays_beyond_the_sct": int(escaped)}
    for name, values in (("wepl_difference_mm", d_wepl_a), ("range_difference_mm", d_depth_a)):
        summary[f"{name}_mean"] = float(values.mean()) if values.size else float("nan")
        summary[f"{name}_mean_abs"] = float(np.abs(values).mean()) if values.size else float("nan")
        summary[f"{name}_max_abs"] = float(np.abs(values).max()) if values.size else float("nan")
    return summary
