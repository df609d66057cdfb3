"""Ignite handler saving a sample grid (MR | CT | sCT | |error|) of the last batch every N epochs."""

from __future__ import annotations

import os

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.utils.enums import CommonKeys as Keys

from custom.visualize import image_grid, save_grid_png

__all__ = ["SampleGridSaver"]


def _as_slices(batch: torch.Tensor, max_samples: int) -> list[np.ndarray]:
    """(B, C, H, W) or (B, C, H, W, D) -> list of 2D arrays (first channel, middle slice for 3D)."""
    array = batch.detach().float().cpu().numpy()[:max_samples, 0]
    if array.ndim == 4:
        array = array[..., array.shape[-1] // 2]
    return list(array)


class SampleGridSaver:
    """Save ``<output_dir>/<prefix>_epoch<NNNN>.png`` from ``engine.state.output`` at the end of every N-th epoch.

    Rows are samples of the last batch; columns MR | CT | sCT | |sCT - CT|. Images are expected normalised to
    ``value_range`` (``[-1, 1]`` in the bundles); the error column shows ``[0, error_max]`` in the same units.

    Args:
        output_dir: folder of the PNG files.
        every: epochs between grids.
        max_samples: rows at most.
        value_range: display window of MR, CT and sCT.
        error_max: upper end of the error display window (0.5 in [-1, 1] units is about 1000 HU).
        prefix: file name prefix.
        orientation: ``"ras"`` for slices of RAS-oriented volumes, ``"png"`` for 2D PNG data (see
            ``custom.visualize.image_grid``).
    """

    def __init__(
        self,
        output_dir: str,
        every: int = 1,
        max_samples: int = 4,
        value_range: tuple[float, float] = (-1.0, 1.0),
        error_max: float = 0.5,
        prefix: str = "train",
        orientation: str = "ras",
    ) -> None:
        if every < 1 or max_samples < 1:
            raise ValueError("every and max_samples must be >= 1.")
        self.output_dir = str(output_dir)
        self.every = every
        self.max_samples = max_samples
        self.value_range = tuple(value_range)
        self.error_max = error_max
        self.prefix = prefix
        self.orientation = orientation

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        if isinstance(output, list):  # decollated output: one dict per sample
            output = {k: torch.stack([o[k] for o in output]) for k in (Keys.IMAGE, Keys.LABEL, Keys.PRED)}
        mr, ct, sct = (_as_slices(output[k], self.max_samples) for k in (Keys.IMAGE, Keys.LABEL, Keys.PRED))
        rows = [[m, c, s, np.abs(s - c)] for m, c, s in zip(mr, ct, sct)]
        windows = [self.value_range] * 3 + [(0.0, self.error_max)]
        os.makedirs(self.output_dir, exist_ok=True)
        path = os.path.join(self.output_dir, f"{self.prefix}_epoch{engine.state.epoch:04d}.png")
        save_grid_png(image_grid(rows, windows, orientation=self.orientation), path)
