"""Does an uncertainty map mean something? Two checks of a per-voxel spread ``s`` against the error ``|sCT - CT|``.

- **Slice ranking**: over slices (2D cases, or the axial slices of volumes), Spearman's rank correlation between a
  slice's mean uncertainty and its MAE, both inside the body mask: does the map rank the slices to check first?
- **Voxel separation**: the area under the ROC curve of ``s`` as a score for "this voxel's error is above
  ``threshold``" (e.g. 50 grey levels or HU), inside the body mask: the probability that a voxel with a large error has
  a higher ``s`` than one without (ties count one half). By the Mann-Whitney identity,

      AUROC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)

  with ``R_pos`` the sum of the (tie-averaged) ranks of the positives' scores among all scores (Hanley & McNeil,
  Radiology 1982). 0.5 is chance, 1 a perfect separation.

Uncertainty for sCT evaluated this way: e.g. Hemsley et al., "Deep generative model for synthetic-CT generation with
uncertainty predictions", MICCAI 2020.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata, spearmanr

__all__ = ["error_auroc", "slice_rank_correlation", "slice_statistics"]


def error_auroc(spread: np.ndarray, error: np.ndarray, threshold: float) -> float:
    """AUROC of ``spread`` for ``error > threshold`` over the given voxels (flattened arrays of one shape).

    Raises:
        ValueError: shapes that differ, or no voxel on one side of the threshold (the AUROC is undefined).
    """
    spread, error = np.asarray(spread, np.float64).ravel(), np.asarray(error, np.float64).ravel()
    if spread.shape != error.shape:
        raise ValueError(f"error_auroc: {spread.size} uncertainty values for {error.size} errors")
    positive = error > threshold
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"error_auroc: {n_pos} voxels above and {n_neg} below {threshold}; need both")
    ranks = rankdata(spread)  # ties get their average rank: a tie counts one half
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def slice_statistics(
    sct: np.ndarray, ct: np.ndarray, spread: np.ndarray, mask: np.ndarray
) -> tuple[list[float], list[float]]:
    """Per axial slice (the last axis of a volume; a 2D image is one slice) with any mask voxel: the mean uncertainty
    and the MAE inside the mask."""
    arrays = [np.asarray(a, np.float64) for a in (sct, ct, spread)]
    body = np.asarray(mask) > 0
    if not all(a.shape == body.shape for a in arrays):
        raise ValueError(f"slice_statistics: shapes {[a.shape for a in arrays]} and mask {body.shape} differ")
    if body.ndim == 2:
        arrays, body = [a[..., None] for a in arrays], body[..., None]
    mean_spread, mae = [], []
    for k in range(body.shape[-1]):
        inside = body[..., k]
        if inside.any():
            mean_spread.append(float(arrays[2][..., k][inside].mean()))
            mae.append(float(np.abs(arrays[0][..., k] - arrays[1][..., k])[inside].mean()))
    return mean_spread, mae


def slice_rank_correlation(mean_spread: Sequence[float], mae: Sequence[float]) -> float:
    """Spearman's rank correlation between the slices' mean uncertainty and their MAE.

    Raises:
        ValueError: fewer than 3 slices, or lists of different lengths.
    """
    if len(mean_spread) != len(mae) or len(mae) < 3:
        raise ValueError(f"slice_rank_correlation: {len(mean_spread)} and {len(mae)} values; need the same, >= 3")
    return float(spearmanr(mean_spread, mae).statistic)
