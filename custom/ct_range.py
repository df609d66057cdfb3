"""The one map between a CT's units and the network's range, used everywhere a value crosses it.

The bundles' networks work in ``unit_range`` (``[-1, 1]``); the CT window ``ct_window`` (``[-1024, 3071]`` HU, or
``[0, 255]`` grey levels for 8-bit slices) is mapped onto it linearly:

    u = u_lo + (c - c_lo) · (u_hi - u_lo) / (c_hi - c_lo)        (CT -> network, :func:`to_units`)
    c = c_lo + (u - u_lo) · (c_hi - c_lo) / (u_hi - u_lo)        (network -> CT, :func:`to_ct`)

Both are :func:`map_range` (no clipping, differentiable on tensors). The bundles' pipelines apply the same map to
images with MONAI's ``ScaleIntensityRanged`` (``ct_to_unit_range``, ``pred_to_ct_range`` in the base config, clipped
to the window); losses, figures and config values (e.g. a bone threshold in HU given to a loss in network units) use
these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["map_range", "to_ct", "to_units"]

Values = TypeVar("Values")  # a number, a NumPy array or a torch tensor


def map_range(values: Values, source: Sequence[float], target: Sequence[float]) -> Values:
    """Map ``values`` linearly from ``source = (low, high)`` onto ``target = (low, high)``:
    ``target[0] + (values - source[0]) * (target[1] - target[0]) / (source[1] - source[0])``.

    Raises:
        ValueError: an empty source range (low == high).
    """
    (s_low, s_high), (t_low, t_high) = (float(v) for v in source), (float(v) for v in target)
    if s_high == s_low:
        raise ValueError(f"source range {tuple(source)} is empty.")
    return t_low + (values - s_low) * ((t_high - t_low) / (s_high - s_low))


def to_units(ct: Values, ct_window: Sequence[float], unit_range: Sequence[float] = (-1.0, 1.0)) -> Values:
    """CT values (HU or grey levels) in the network's range."""
    return map_range(ct, ct_window, unit_range)


def to_ct(units: Values, unit_range: Sequence[float], ct_window: Sequence[float]) -> Values:
    """The network's values in the CT's units (HU or grey levels)."""
    return map_range(units, unit_range, ct_window)
