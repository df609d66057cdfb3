"""The two checks of an uncertainty map (custom.metrics.uncertainty) on maps whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from custom.metrics.uncertainty import error_auroc, slice_rank_correlation, slice_statistics


def test_auroc_of_perfect_useless_and_inverted_maps():
    rng = np.random.default_rng(0)
    error = rng.uniform(0, 100, 10_000)
    assert error_auroc(error, error, 50) == 1.0  # the error itself separates perfectly
    assert error_auroc(-error, error, 50) == 0.0
    assert abs(error_auroc(rng.uniform(size=error.size), error, 50) - 0.5) < 0.02  # noise: chance
    assert error_auroc(np.zeros(error.size), error, 50) == 0.5  # a constant map: every pair a tie
    # a small hand case: positives {0.9, 0.4}, negatives {0.5, 0.1}: 3 of 4 pairs ordered
    assert error_auroc(np.array([0.9, 0.4, 0.5, 0.1]), np.array([60, 60, 10, 10]), 50) == 0.75
    with pytest.raises(ValueError, match="need both"):
        error_auroc(error, error, 1000)


def test_slice_statistics_and_rank_correlation():
    ct = np.zeros((8, 8, 5))
    sct = ct + np.arange(5.0)  # slice k is off by k everywhere
    mask = np.ones_like(ct)
    mask[..., 2] = 0  # a slice without body is skipped
    spread, mae = slice_statistics(sct, ct, 0.5 * np.abs(sct - ct), mask)
    assert mae == [0.0, 1.0, 3.0, 4.0] and spread == [0.0, 0.5, 1.5, 2.0]
    assert slice_rank_correlation(spread, mae) == pytest.approx(1.0)
    assert slice_rank_correlation(spread[::-1], mae) == pytest.approx(-1.0)
    one_slice = slice_statistics(sct[..., 1], ct[..., 1], sct[..., 1], mask[..., 1])
    assert one_slice == ([1.0], [1.0])
    with pytest.raises(ValueError, match="need the same"):
        slice_rank_correlation([1.0, 2.0], [1.0, 2.0])
