"""Figures show images the right way up: PNG slices as in the file, RAS slices with anterior at the top."""

from __future__ import annotations

import numpy as np
from PIL import Image

from custom.io import read_image
from custom.visualize import case_figure, image_grid, window_to_uint8


def test_png_cells_match_the_file_layout(tmp_path):
    pixels = np.zeros((30, 40), dtype=np.uint8)  # 30 rows, 40 columns
    pixels[:5, :8] = 255  # top-left corner bright
    Image.fromarray(pixels).save(tmp_path / "ct.png")
    array, _ = read_image(tmp_path / "ct.png")
    assert array.shape == (40, 30)  # MONAI's PIL reader: column first
    grid = image_grid([[array]], [(0.0, 255.0)], pad=0, orientation="png")
    np.testing.assert_array_equal(grid, window_to_uint8(pixels, 0, 255))

    case_figure(array, array, array, tmp_path / "figure.png", ct_window=(0.0, 255.0))
    with Image.open(tmp_path / "figure.png") as figure:
        cell = np.asarray(figure)[2 : 2 + 30, 2 : 2 + 40]  # first cell after the 2-pixel border
    assert cell[:5, :8].min() > 200 and cell[-5:, -8:].max() < 50


def test_ras_axial_slices_have_anterior_up():
    volume = np.zeros((20, 24, 3))
    volume[:, -4:, :] = 1.0  # the most anterior rows (high y in RAS)
    grid = image_grid([[volume[:, :, 1]]], [(0.0, 1.0)], pad=0, orientation="ras")
    assert grid.shape == (24, 20)
    assert grid[:4].min() == 255 and grid[4:].max() == 0
