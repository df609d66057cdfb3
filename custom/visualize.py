"""Figures of images with titles, colour bars and units: training samples and evaluation cases (MR | CT | sCT | error).

People look at images before numbers: these figures are saved every epoch during training and per case at evaluation.
A figure is a grid of panels, one per (row, column); every column has a title, a display window in its own units and a
colour bar labelled with those units (HU, grey level, a.u.). Panels are drawn at about their native size (one image
pixel per screen pixel; small images are enlarged so that the labels stay readable).

Arrays are indexed like MONAI's data: (x, y[, z]) for RAS-oriented volumes, slices of which are rotated so that
anterior (or superior) is up; 2D PNG images as MONAI's PIL reader returns them (column first) are transposed back to
the file's own layout.

matplotlib is imported inside the functions (``import custom.visualize`` stays cheap) and used without ``pyplot``: a
``Figure`` with an Agg canvas, so no global figure state is created or leaked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from custom.outputs import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Column", "orthogonal_slices", "make_figure", "save_figure", "case_figure"]

ORIENTATIONS = ("ras", "png")
DPI = 100  # figure inches * DPI = pixels: a 256 x 256 slice is drawn 2.56 in wide, i.e. 256 pixels
MIN_PANEL = 160  # pixels: images whose largest side is smaller are enlarged to this size
MIN_CELL = (120, 120)  # pixels (height, width) of a grid cell at least: room for a row label, a title, a colour bar
# margins and gaps in pixels
TITLE_H, COLUMN_TITLE_H, LEFT, RIGHT, BOTTOM, GAP = 36, 24, 30, 14, 8, 10
COLORBAR_GAP, COLORBAR_H, COLORBAR_LABELS_H = 8, 12, 40


@dataclass(frozen=True)
class Column:
    """A column of a figure: its title, display window ``(low, high)`` in the column's units, the colour-bar label
    (``units``) and the colour map (``"gray"``; e.g. ``"magma"`` for error maps)."""

    title: str
    window: tuple[float, float]
    units: str = ""
    cmap: str = "gray"

    def __post_init__(self) -> None:
        if len(self.window) != 2:
            raise ValueError(f"column {self.title!r}: window must be (low, high), got {self.window!r}.")
        low, high = (float(v) for v in self.window)
        if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
            raise ValueError(f"column {self.title!r}: window high ({high}) must be above low ({low}), both finite.")
        object.__setattr__(self, "window", (low, high))


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


def _check(
    rows: Sequence[Sequence[np.ndarray]], columns: Sequence[Column], row_labels: Sequence[str] | None, orientation: str
) -> None:
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be 'ras' or 'png', got {orientation!r}.")
    if not columns:
        raise ValueError("a figure needs at least one column.")
    if not rows:
        raise ValueError("a figure needs at least one row of images.")
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise ValueError(f"row {i} has {len(row)} images for {len(columns)} columns.")
        for j, image in enumerate(row):
            if np.ndim(image) != 2:
                raise ValueError(f"row {i}, column {j}: expected a 2D image, got shape {np.shape(image)}.")
            if 0 in np.shape(image):
                raise ValueError(f"row {i}, column {j}: empty image of shape {np.shape(image)}.")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"{len(row_labels)} row labels for {len(rows)} rows.")


def make_figure(
    rows: Sequence[Sequence[np.ndarray]],
    columns: Sequence[Column],
    title: str = "",
    row_labels: Sequence[str] | None = None,
    orientation: str = "ras",
) -> Figure:
    """The figure of ``save_figure`` (see there), not saved: one axes per panel, row by row, then one colour bar per
    column, below the last row."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    _check(rows, columns, row_labels, orientation)
    images = [[_display(np.asarray(image, dtype=np.float32), orientation) for image in row] for row in rows]
    scale = max(1.0, MIN_PANEL / max(max(image.shape) for row in images for image in row))
    heights = [max(MIN_CELL[0], scale * max(image.shape[0] for image in row)) for row in images]
    widths = [max(MIN_CELL[1], scale * max(row[j].shape[1] for row in images)) for j in range(len(columns))]

    top = (TITLE_H if title else BOTTOM) + COLUMN_TITLE_H
    left = LEFT if row_labels is not None else BOTTOM
    colorbars = COLORBAR_GAP + COLORBAR_H + COLORBAR_LABELS_H
    fig_w = left + sum(widths) + GAP * (len(widths) - 1) + RIGHT
    fig_h = top + sum(heights) + GAP * (len(heights) - 1) + colorbars + BOTTOM
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)

    def rect(x: float, y: float, w: float, h: float) -> list[float]:
        """Figure fractions of a box given in pixels from the top-left corner."""
        return [x / fig_w, 1 - (y + h) / fig_h, w / fig_w, h / fig_h]

    lefts = [left + sum(widths[:j]) + GAP * j for j in range(len(widths))]
    y = top
    for i, (row, height) in enumerate(zip(images, heights)):
        for j, (image, column) in enumerate(zip(row, columns)):
            h, w = scale * image.shape[0], scale * image.shape[1]  # centred in its cell, aspect kept
            ax = fig.add_axes(rect(lefts[j] + (widths[j] - w) / 2, y + (height - h) / 2, w, h))
            low, high = column.window
            ax.imshow(image, cmap=column.cmap, vmin=low, vmax=high, aspect="auto", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(column.title, fontsize=10, pad=4)
            if j == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[i], fontsize=9, labelpad=4)
        y += height + GAP
    y += COLORBAR_GAP - GAP
    for j, column in enumerate(columns):
        cax = fig.add_axes(rect(lefts[j] + 0.1 * widths[j], y, 0.8 * widths[j], COLORBAR_H))
        mappable = ScalarMappable(norm=Normalize(*column.window), cmap=column.cmap)
        bar = fig.colorbar(mappable, cax=cax, orientation="horizontal")
        bar.ax.tick_params(labelsize=8)
        bar.set_label(column.units, fontsize=8, labelpad=2)
    if title:
        fig.suptitle(title, y=1 - TITLE_H / 2 / fig_h, va="center", fontsize=12)
    return fig


def save_figure(
    rows: Sequence[Sequence[np.ndarray]],
    columns: Sequence[Column],
    path: str | os.PathLike,
    title: str = "",
    row_labels: Sequence[str] | None = None,
    orientation: str = "ras",
) -> str:
    """Save a PNG figure of 2D images, atomically (temp file beside ``path``, then rename); returns ``path``.

    Args:
        rows: rows of 2D images, ``len(columns)`` per row; images in a row may differ in shape (orthogonal slices of
            an anisotropic volume): each is centred in its cell.
        columns: title, display window, colour-bar units and colour map of each column.
        path: the PNG file.
        title: figure title, e.g. the case id.
        row_labels: one label per row, drawn on the left (e.g. ``"axial z=12"``).
        orientation: ``"ras"`` for slices of RAS-oriented volumes (anterior up), ``"png"`` for 2D PNG images as
            MONAI's PIL reader returns them.

    Raises:
        ValueError: no rows or columns, a row whose length is not ``len(columns)``, an image that is not 2D, a
            bad window (see ``Column``), ``len(row_labels) != len(rows)`` or an unknown orientation.
    """
    fig = make_figure(rows, columns, title=title, row_labels=row_labels, orientation=orientation)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return str(path)


def case_figure(
    mr: np.ndarray,
    ct: np.ndarray,
    sct: np.ndarray,
    path: str | os.PathLike,
    case: str,
    display_window: tuple[float, float] = (-1000.0, 1600.0),
    error_max: float = 500.0,
    units: str = "HU",
    mr_percentiles: tuple[float, float] = (0.5, 99.5),
    input_title: str = "MR",
    uncertainty: np.ndarray | None = None,
) -> str:
    """Save MR | CT | sCT | |sCT - CT| for one case, titled ``case``; returns ``path``. With ``uncertainty`` (the
    per-voxel spread of an ensemble, same shape, in ``units``) the figure is MR | CT | sCT | uncertainty |
    |sCT - CT|, the two maps on the same scale ``[0, error_max]``, so one sees whether the spread marks the errors.

    3D (x, y, z) RAS volumes give three rows, the axial, coronal and sagittal middle slices (row labels name the plane
    and the slice index, e.g. ``axial z=90``); 2D images (a PNG as MONAI's PIL reader returns it) give one row
    labelled ``slice``, in the file's own layout. The MR window is its ``mr_percentiles`` (arbitrary units); CT and
    sCT share ``display_window`` and the error column shows ``[0, error_max]`` (magma), all in ``units``.
    ``input_title`` names the first column (the network's input, e.g. ``"lung mask"``).

    Raises:
        ValueError: the three arrays differ in shape or are neither 2D nor 3D.
    """
    if not (mr.shape == ct.shape == sct.shape):
        raise ValueError(f"case_figure: MR {mr.shape}, CT {ct.shape} and sCT {sct.shape} must have the same shape.")
    if uncertainty is not None and uncertainty.shape != mr.shape:
        raise ValueError(f"case_figure: uncertainty {uncertainty.shape} must have the shape of the MR {mr.shape}.")
    if mr.ndim not in (2, 3):
        raise ValueError(f"case_figure: expected 2D or 3D images, got shape {mr.shape}.")
    error = np.abs(np.asarray(sct, dtype=np.float64) - np.asarray(ct, dtype=np.float64))
    volumes = (mr, ct, sct, error) if uncertainty is None else (mr, ct, sct, uncertainty, error)
    if mr.ndim == 3:
        cx, cy, cz = (s // 2 for s in mr.shape)
        rows = [list(cut) for cut in zip(*(orthogonal_slices(v, (cx, cy, cz)) for v in volumes))]
        labels, orientation = [f"axial z={cz}", f"coronal y={cy}", f"sagittal x={cx}"], "ras"
    else:
        rows, labels, orientation = [list(volumes)], ["slice"], "png"
    mr_low, mr_high = (float(v) for v in np.nanpercentile(mr, mr_percentiles))
    if not (np.isfinite(mr_low) and np.isfinite(mr_high)):
        mr_low, mr_high = 0.0, 1.0  # no finite MR value: any window shows it
    if mr_high <= mr_low:  # a constant MR image
        mr_high = mr_low + 1.0
    columns = [
        Column(input_title, (mr_low, mr_high), "a.u."),
        Column("CT", display_window, units),
        Column("sCT", display_window, units),
        Column("|sCT - CT|", (0.0, error_max), units, cmap="magma"),
    ]
    if uncertainty is not None:
        columns.insert(3, Column("uncertainty (SD)", (0.0, error_max), units, cmap="magma"))
    return save_figure(rows, columns, path, title=case, row_labels=labels, orientation=orientation)
