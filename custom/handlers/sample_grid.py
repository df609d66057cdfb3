"""Ignite handler saving a figure of the last batch (e.g. MR | CT | sCT | |sCT - CT|) every N epochs.

The batch is in network units (``value_range``, ``[-1, 1]`` in the bundles). Target columns (CT, sCT) are shown in
the units of the data when ``target_range`` is given, mapped linearly from ``value_range``:

    y = t_low + (x - v_low) * (t_high - t_low) / (v_high - v_low)

so that, with the CT window ``[-1024, 3071]``, a label of 1.0 is shown as 3071 HU with a colour bar in HU. The error
column ``|a - b|`` is in the same units, windowed ``[0, error_max]``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from custom.ct_range import map_range
from custom.visualize import Column, save_figure

__all__ = ["SampleGridSaver"]


def _range(name: str, value: Sequence[float]) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    if not high > low:
        raise ValueError(f"{name} must be (low, high) with high > low, got {tuple(value)}.")
    return low, high


def _slice(sample: Any, key: str) -> np.ndarray:
    """(C, H, W) or (C, H, W, D) -> 2D array: the first channel, the middle slice of the last axis for 3D."""
    array = sample.detach().float().cpu().numpy() if isinstance(sample, torch.Tensor) else np.asarray(sample, float)
    if array.ndim not in (3, 4):
        raise ValueError(f"SampleGridSaver: {key!r} of a sample has shape {array.shape}, expected (C, H, W[, D]).")
    array = array[0]
    return array[..., array.shape[-1] // 2] if array.ndim == 3 else array


def _check_keys(item: Mapping, keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in item]
    if missing:
        raise KeyError(f"SampleGridSaver: keys {missing} not in the engine output (keys: {sorted(map(str, item))}).")


def _samples(output: Any, keys: Sequence[str], max_samples: int) -> list[dict[str, np.ndarray]]:
    """The first ``max_samples`` samples of ``engine.state.output``, decollated (a list of dicts, one per sample, as
    MONAI's engines leave it) or not (a dict of batched tensors), as one dict of 2D slices per sample."""
    if isinstance(output, Mapping):  # batched: split it into samples
        _check_keys(output, keys)
        output = [{k: output[k][b] for k in keys} for b in range(min(len(output[k]) for k in keys))]
    if not isinstance(output, Sequence) or not output or not all(isinstance(o, Mapping) for o in output):
        raise ValueError(f"SampleGridSaver: expected a dict or a list of dicts as output, got {type(output).__name__}.")
    samples = []
    for item in output[:max_samples]:
        _check_keys(item, keys)
        samples.append({k: _slice(item[k], k) for k in keys})
    return samples


class SampleGridSaver:
    """Save ``<output_dir>/<prefix>_epoch<NNNN>.png`` from ``engine.state.output`` at the end of every N-th epoch.

    Rows are the first ``max_samples`` samples of the last batch (``sample 0``, ...; first channel, middle slice of
    the last axis for 3D); one column per key, titled by ``titles``, plus ``|a - b|`` if ``error = (a, b)``.

    Args:
        output_dir: folder of the PNG files.
        every: epochs between figures.
        max_samples: rows at most.
        keys: keys of the output shown, one column each.
        titles: column titles, one per key.
        value_range: range of the network's values (display window of the keys not in ``target_keys``, in a.u.).
        target_keys: keys mapped from ``value_range`` to ``target_range`` (:func:`custom.ct_range.map_range`).
        target_range: the data range the network's ``value_range`` stands for, e.g. the CT window
            ``(-1024, 3071)``; display window of ``target_keys``, labelled ``units``. ``None``: no mapping, the
            target keys are shown like the others.
        units: colour-bar label of the target columns and the error column, e.g. ``"HU"`` or ``"grey level"``
            (only used with ``target_range``).
        error: ``(a, b)`` adds the column ``|a - b|`` (both keys among ``keys``, and both target keys or neither
            when ``target_range`` is given); ``None``: no error column.
        error_max: upper end of the error window; default a 1/8 of the span of the error's units (``target_range``
            or ``value_range``): about 500 HU for the CT window.
        prefix: file name prefix and figure title.
        orientation: ``"ras"`` for slices of RAS-oriented volumes, ``"png"`` for 2D PNG data (see
            ``custom.visualize.save_figure``).
    """

    def __init__(
        self,
        output_dir: str,
        every: int = 1,
        max_samples: int = 4,
        keys: Sequence[str] = ("image", "label", "pred"),
        titles: Sequence[str] = ("MR", "CT", "sCT"),
        value_range: tuple[float, float] = (-1.0, 1.0),
        target_keys: Sequence[str] = ("label", "pred"),
        target_range: tuple[float, float] | None = None,
        units: str = "",
        error: tuple[str, str] | None = ("pred", "label"),
        error_max: float | None = None,
        prefix: str = "train",
        orientation: str = "ras",
    ) -> None:
        if every < 1 or max_samples < 1:
            raise ValueError(f"every ({every}) and max_samples ({max_samples}) must be >= 1.")
        keys, titles, target_keys = list(keys), list(titles), list(target_keys)
        if not keys or len(keys) != len(titles):
            raise ValueError(f"keys {keys} and titles {titles} must be non-empty and of the same length.")
        if len(set(keys)) != len(keys):
            raise ValueError(f"keys {keys} must be distinct.")
        if not set(target_keys) <= set(keys):
            raise ValueError(f"target_keys {target_keys} must be among keys {keys}.")
        if orientation not in ("ras", "png"):
            raise ValueError(f"orientation must be 'ras' or 'png', got {orientation!r}.")
        self.value_range = _range("value_range", value_range)
        self.target_range = None if target_range is None else _range("target_range", target_range)
        if error is not None:
            error = tuple(error)
            if len(error) != 2 or not set(error) <= set(keys):
                raise ValueError(f"error must be two keys among keys {keys}, got {error}.")
            if self.target_range is not None and (error[0] in target_keys) != (error[1] in target_keys):
                raise ValueError(f"error keys {error} must both be target keys {target_keys} or neither.")
        self.error_is_target = error is not None and self.target_range is not None and error[0] in target_keys
        span = self.target_range if self.error_is_target else self.value_range
        self.error_max = float(error_max) if error_max is not None else (span[1] - span[0]) / 8
        if error is not None and not self.error_max > 0:
            raise ValueError(f"error_max must be > 0, got {error_max}.")
        self.output_dir = str(output_dir)
        self.every = every
        self.max_samples = max_samples
        self.keys, self.titles, self.target_keys = keys, titles, target_keys
        self.units = units
        self.error = error
        self.prefix = prefix
        self.orientation = orientation

    def _is_target(self, key: str) -> bool:
        return self.target_range is not None and key in self.target_keys

    def columns(self) -> list[Column]:
        """The columns of the figure: one per key, then the error column."""
        columns = [
            (
                Column(title, self.target_range, self.units)
                if self._is_target(key)
                else Column(title, self.value_range, "a.u.")
            )
            for key, title in zip(self.keys, self.titles)
        ]
        if self.error is not None:
            a, b = (self.titles[self.keys.index(k)] for k in self.error)
            units = self.units if self.error_is_target else "a.u."
            columns.append(Column(f"|{a} - {b}|", (0.0, self.error_max), units, cmap="magma"))
        return columns

    def rows(self, output: Any) -> list[list[np.ndarray]]:
        """The 2D images of the figure, one row per sample, in the display units of the columns."""
        rows = []
        for sample in _samples(output, self.keys, self.max_samples):
            shown = {
                k: map_range(v, self.value_range, self.target_range) if self._is_target(k) else v
                for k, v in sample.items()
            }
            row = [shown[k] for k in self.keys]
            if self.error is not None:
                row.append(np.abs(shown[self.error[0]] - shown[self.error[1]]))
            rows.append(row)
        return rows

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self)

    def __call__(self, engine: Engine) -> str:
        rows = self.rows(engine.state.output)
        path = os.path.join(self.output_dir, f"{self.prefix}_epoch{engine.state.epoch:04d}.png")
        return save_figure(
            rows,
            self.columns(),
            path,
            title=f"{self.prefix} epoch {engine.state.epoch}",
            row_labels=[f"sample {i}" for i in range(len(rows))],
            orientation=self.orientation,
        )
