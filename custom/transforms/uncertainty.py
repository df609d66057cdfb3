"""Split an ensemble's two-channel output into the prediction and its spread in the CT's units.

:class:`custom.networks.Ensemble` with ``uncertainty=True`` returns, per voxel, the combined prediction (channel 0)
and the standard deviation over members x augmentations (channel 1), both in network units (``unit_range``). The
sCT's post-processing maps channel 0 to the CT window as before; the spread is a width, so it is only scaled:

    s_CT = s_unit * (w_high - w_low) / (u_high - u_low)

(HU for CT windows in HU, grey levels for 8-bit data), with ``(w_low, w_high)`` the CT window and ``(u_low,
u_high)`` the network's range.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.transforms import MapTransform

__all__ = ["SplitUncertaintyd"]


class SplitUncertaintyd(MapTransform):
    """``data[key]`` of two channels -> ``data[key]`` = channel 0 and ``data[std_key]`` = channel 1 in CT units (see
    the module docstring); an image of one channel is left alone (no uncertainty was asked for).

    Args:
        keys: the network's output (``"pred"``).
        std_key: where the spread goes (``"pred_std"``).
        unit_range: the network's output range ``(u_low, u_high)``.
        ct_window: the CT window ``(w_low, w_high)`` the output range maps to.
    """

    def __init__(self, keys: str, std_key: str, unit_range: Sequence[float], ct_window: Sequence[float]) -> None:
        super().__init__(keys, allow_missing_keys=False)
        (u_low, u_high), (w_low, w_high) = (tuple(float(v) for v in r) for r in (unit_range, ct_window))
        if not (u_high > u_low and w_high > w_low):
            raise ValueError(f"SplitUncertaintyd: unit_range {unit_range} and ct_window {ct_window} must rise")
        self.std_key = std_key
        self.scale = (w_high - w_low) / (u_high - u_low)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            channels = d[key].shape[0]
            if channels == 1:
                continue
            if channels != 2:
                raise ValueError(f"SplitUncertaintyd: {key} has {channels} channels, expected 1 or 2")
            d[self.std_key] = d[key][1:2] * self.scale
            d[key] = d[key][0:1]
        return d
