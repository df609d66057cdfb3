"""Image grids (MR | CT | sCT | |error|) for training samples and evaluation figures.

People look at images before numbers: these grids are saved every epoch during training and per case at evaluation.
Arrays are indexed like MONAI's RAS-oriented data (x, y[, z]); slices are rotated for display so that anterior is up.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from custom.io import write_png

__all__ = ["window_to_uint8", "orthogonal_slices", "image_grid", "save_grid_png", "case_figure", "COLUMNS"]

COLUMNS = ("MR", "CT", "sCT", "|error|")


def window_to_uint8(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``[low, high]`` linearly to ``[0, 255]`` (clipped)."""
    if high <= low:
        raise ValueError(f"window high ({high}) must be above low ({low}).")
    scaled = (np.asarray(image, dtype=np.float64) - low) / (high - low)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def _display(slice2d: np.ndarray, orientation: str) -> np.ndarray:
    """Rows and columns of the screen image: RAS slices are rotated so that anterior (or superior) is up; PNG slices
    (MONAI's PIL reader indexes them column first) are transposed back to the file's own layout."""
    if orientation == "ras":
        return np.rot90(np.asarray(slice2d))
    if orientation == "png":
        return np.asarray(slice2d).T
    raise ValueError(f"orientation must be 'ras' or 'png', got {orientation!r}.")


def orthogonal_slices(volume: np.ndarray, center: Sequence[int] | None = None) -> list[np.ndarray]:
    """Axial, coronal and sagittal slices through ``center`` (default the middle) of an (x, y, z) volume."""
    if volume.ndim != 3:
        raise ValueError(f"expected a 3D volume, got shape {volume.shape}.")
    cx, cy, cz = center if center is not None else [s // 2 for s in volume.shape]
    return [volume[:, :, cz], volume[:, cy, :], volume[cx, :, :]]


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    windows: Sequence[tuple[float, float]],
    pad: int = 2,
    orientation: str = "ras",
) -> np.ndarray:
    """Tile 2D images into one uint8 image; ``windows[j]`` is the display window of column ``j``.

    Images in a row may differ in size (orthogonal slices): each cell is padded to the largest cell.
    ``orientation``: ``"ras"`` for slices of RAS-oriented volumes, ``"png"`` for 2D PNG images as MONAI reads them.
    """
    if not rows:
        raise ValueError("image_grid needs at least one row.")
    cells = [[_display(window_to_uint8(img, *windows[j]), orientation) for j, img in enumerate(row)] for row in rows]
    height = max(c.shape[0] for row in cells for c in row)
    width = max(c.shape[1] for row in cells for c in row)
    ncols = max(len(row) for row in cells)
    grid = np.zeros((len(cells) * (height + pad) + pad, ncols * (width + pad) + pad), dtype=np.uint8)
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            top = pad + i * (height + pad) + (height - cell.shape[0]) // 2
            left = pad + j * (width + pad) + (width - cell.shape[1]) // 2
            grid[top : top + cell.shape[0], left : left + cell.shape[1]] = cell
    return grid


def save_grid_png(grid: np.ndarray, path: str | os.PathLike) -> str:
    """Save a uint8 grid (rows x columns) as PNG, atomically."""
    return write_png(grid, path, pixel_layout=True)


def case_figure(
    mr: np.ndarray,
    ct: np.ndarray,
    sct: np.ndarray,
    path: str | os.PathLike,
    ct_window: tuple[float, float] = (-1000.0, 1600.0),
    error_max: float = 500.0,
    mr_percentiles: tuple[float, float] = (0.5, 99.5),
) -> str:
    """Save MR | CT | sCT | |sCT - CT| for one case: three orthogonal middle slices of a (RAS) volume, or the 2D
    image (a PNG as MONAI's PIL reader returns it, shown in the file's own layout).

    CT and sCT share ``ct_window``; the error column shows ``[0, error_max]`` (HU for volumes).
    """
    if not (mr.shape == ct.shape == sct.shape):
        raise ValueError(f"case_figure: MR {mr.shape}, CT {ct.shape} and sCT {sct.shape} must have the same shape.")
    error = np.abs(np.asarray(sct, dtype=np.float64) - np.asarray(ct, dtype=np.float64))
    volumes = (mr, ct, sct, error)
    rows = [list(cut) for cut in zip(*(orthogonal_slices(v) for v in volumes))] if mr.ndim == 3 else [list(volumes)]
    mr_low, mr_high = np.percentile(mr, mr_percentiles)
    windows = [(float(mr_low), float(max(mr_high, mr_low + 1e-6))), ct_window, ct_window, (0.0, error_max)]
    return save_grid_png(image_grid(rows, windows, orientation="ras" if mr.ndim == 3 else "png"), path)
