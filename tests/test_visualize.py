"""Figures: panels the right way up (PNG slices as in the file, RAS slices with anterior up), titles, row labels, colour
bars with units, argument checks and atomic PNG writing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import custom.visualize as visualize
from custom.images import read_image
from custom.visualize import Column, case_figure, make_figure, orthogonal_slices, save_figure

CT = Column("CT", (-1000.0, 1600.0), "HU")


def panels_and_colorbars(fig):
    """Image panels and colour-bar axes of a figure (a colour bar's axes holds no image of its own)."""
    panels = [ax for ax in fig.axes if ax.images]
    colorbars = [ax for ax in fig.axes if not ax.images]
    return panels, colorbars


def test_png_panels_match_the_file_layout(tmp_path):
    pixels = np.zeros((30, 40), dtype=np.uint8)  # 30 rows, 40 columns
    pixels[:5, :8] = 255  # top-left corner bright
    Image.fromarray(pixels).save(tmp_path / "ct.png")
    array, _ = read_image(tmp_path / "ct.png")
    assert array.shape == (40, 30)  # MONAI's PIL reader: column first
    fig = make_figure([[array]], [Column("CT", (0.0, 255.0))], orientation="png")
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), pixels)


def test_ras_axial_slices_have_anterior_up():
    volume = np.zeros((20, 24, 3))
    volume[:, -4:, :] = 1.0  # the most anterior rows (high y in RAS)
    fig = make_figure([[volume[:, :, 1]]], [Column("CT", (0.0, 1.0))], orientation="ras")
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert shown.shape == (24, 20)
    assert shown[:4].min() == 1.0 and shown[4:].max() == 0.0


def test_figure_has_titles_row_labels_and_a_labelled_colour_bar_per_column():
    columns = [Column("MR", (0.0, 1.0), "a.u."), CT, Column("|sCT - CT|", (0.0, 500.0), "HU", cmap="magma")]
    rows = [[np.zeros((32, 32))] * 3 for _ in range(2)]
    fig = make_figure(rows, columns, title="case 7", row_labels=["sample 0", "sample 1"])
    panels, colorbars = panels_and_colorbars(fig)
    assert len(fig.axes) == 2 * 3 + 3 and len(panels) == 6 and len(colorbars) == 3
    assert [ax.get_title() for ax in panels[:3]] == ["MR", "CT", "|sCT - CT|"]
    assert all(ax.get_title() == "" for ax in panels[3:])  # column titles on the first row only
    assert [panels[0].get_ylabel(), panels[3].get_ylabel()] == ["sample 0", "sample 1"]
    assert [ax.get_xlabel() for ax in colorbars] == ["a.u.", "HU", "HU"]
    assert all(not ax.get_xticks().size and not ax.get_yticks().size for ax in panels)  # no axis ticks
    assert [tuple(ax.images[0].get_clim()) for ax in panels[:3]] == [(0.0, 1.0), (-1000.0, 1600.0), (0.0, 500.0)]
    assert panels[2].images[0].get_cmap().name == "magma"
    assert fig.get_suptitle() == "case 7"


def test_panels_of_different_shapes_keep_their_aspect():
    volume = np.zeros((64, 64, 16))  # anisotropic: thin sagittal and coronal slices
    fig = make_figure([orthogonal_slices(volume)], [CT, CT, CT])
    panels, _ = panels_and_colorbars(fig)
    fig.canvas.draw()
    sizes = [(ax.get_window_extent().width, ax.get_window_extent().height) for ax in panels]
    assert sizes[0] == pytest.approx((160, 160), abs=1)  # small images are enlarged to 160 pixels
    assert sizes[1] == pytest.approx((160, 40), abs=1) and sizes[2] == pytest.approx((160, 40), abs=1)


def test_native_size_and_aspect_of_the_png(tmp_path):
    image = np.zeros((256, 256))
    one = save_figure([[image] * 4], [CT] * 4, tmp_path / "one.png", title="t", row_labels=["a"])
    three = save_figure([[image] * 4] * 3, [CT] * 4, tmp_path / "three.png", title="t", row_labels=["a", "b", "c"])
    with Image.open(one) as a, Image.open(three) as b:
        (w1, h1), (w3, h3) = a.size, b.size
    assert w1 == w3 and 4 * 256 < w1 < 4 * 256 * 1.2  # 256-pixel slices at about their native size
    assert h1 > 256 and h3 - h1 >= 2 * 256  # two more rows of 256 pixels
    assert w1 > 2.5 * h1 and h3 > 0.75 * w3  # 4 x 1 panels: wide; 4 x 3 panels: nearly square
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.png", "three.png"]  # no temporary file left


@pytest.mark.parametrize(
    "rows, columns, kwargs, message",
    [
        ([], [CT], {}, "at least one row"),
        ([[np.zeros((4, 4))]], [], {}, "at least one column"),
        ([[np.zeros((4, 4))] * 2], [CT], {}, "2 images for 1 columns"),
        ([[np.zeros((4, 4, 4))]], [CT], {}, "2D image"),
        ([[np.zeros((4, 4))]], [CT], {"orientation": "lps"}, "orientation"),
        ([[np.zeros((4, 4))]], [CT], {"row_labels": ["a", "b"]}, "2 row labels for 1 rows"),
    ],
)
def test_bad_arguments_raise_and_write_nothing(tmp_path, rows, columns, kwargs, message):
    with pytest.raises(ValueError, match=message):
        save_figure(rows, columns, tmp_path / "figure.png", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("window", [(1.0, 1.0), (2.0, 1.0), (0.0, float("nan"))])
def test_a_column_window_must_be_increasing(window):
    with pytest.raises(ValueError, match="must be above low"):
        Column("CT", window)


def test_case_figure_of_a_volume_has_three_labelled_rows(tmp_path, monkeypatch):
    ct = np.full((40, 32, 20), -1000.0)
    ct[10:30, 8:24, 5:15] = 40.0
    sct = ct + 100.0
    mr = np.linspace(0.0, 1.0, ct.size).reshape(ct.shape)
    calls = []
    monkeypatch.setattr(visualize, "save_figure", lambda *args, **kwargs: calls.append((args, kwargs)) or args[2])

    case_figure(mr, ct, sct, tmp_path / "1BA001.png", case="1BA001", display_window=(-500.0, 500.0), error_max=200.0)
    (rows, columns, _), kwargs = calls[0]
    assert kwargs["title"] == "1BA001" and kwargs["orientation"] == "ras"
    assert kwargs["row_labels"] == ["axial z=10", "coronal y=16", "sagittal x=20"]
    assert [len(row) for row in rows] == [4, 4, 4]
    assert [r[0].shape for r in rows] == [(40, 32), (40, 20), (32, 20)]
    assert [c.title for c in columns] == ["MR", "CT", "sCT", "|sCT - CT|"]
    assert [c.units for c in columns] == ["a.u.", "HU", "HU", "HU"]
    assert [c.window for c in columns[1:]] == [(-500.0, 500.0), (-500.0, 500.0), (0.0, 200.0)]
    assert columns[0].window == pytest.approx(np.percentile(mr, (0.5, 99.5)))
    assert columns[3].cmap == "magma" and np.all(rows[0][3] == 100.0)

    monkeypatch.undo()
    path = case_figure(mr, ct, sct, tmp_path / "1BA001.png", case="1BA001")
    with Image.open(path) as figure:
        width, height = figure.size
    assert height > width / 2  # three rows of four panels
    assert [p.name for p in tmp_path.iterdir()] == ["1BA001.png"]


def test_case_figure_of_a_png_has_one_row_in_the_file_layout(tmp_path, monkeypatch):
    image = np.arange(12.0).reshape(4, 3)
    calls = []
    monkeypatch.setattr(visualize, "save_figure", lambda *args, **kwargs: calls.append((args, kwargs)) or args[2])
    case_figure(image, image, image, tmp_path / "c.png", case="c", display_window=(0.0, 255.0), units="grey level")
    (rows, columns, _), kwargs = calls[0]
    assert len(rows) == 1 and kwargs["row_labels"] == ["slice"] and kwargs["orientation"] == "png"
    assert [c.units for c in columns] == ["a.u.", "grey level", "grey level", "grey level"]


def test_case_figure_with_an_uncertainty_map_shows_it_before_the_error(tmp_path, monkeypatch):
    image, spread = np.arange(12.0).reshape(4, 3), np.full((4, 3), 7.0)
    calls = []
    monkeypatch.setattr(visualize, "save_figure", lambda *args, **kwargs: calls.append((args, kwargs)) or args[2])
    case_figure(image, image + 2, image, tmp_path / "c.png", case="c", error_max=64.0, uncertainty=spread)
    (rows, columns, _), _ = calls[0]
    assert [c.title for c in columns] == ["MR", "CT", "sCT", "uncertainty (SD)", "|sCT - CT|"]
    assert columns[3].window == columns[4].window == (0.0, 64.0)
    np.testing.assert_array_equal(rows[0][3], spread)
    np.testing.assert_array_equal(rows[0][4], np.full((4, 3), 2.0))
    with pytest.raises(ValueError, match="uncertainty"):
        case_figure(image, image, image, tmp_path / "c.png", case="c", uncertainty=np.zeros((3, 3)))


def test_case_figure_needs_images_of_one_shape(tmp_path):
    with pytest.raises(ValueError, match="same shape"):
        case_figure(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 5)), tmp_path / "c.png", case="c")
    with pytest.raises(ValueError, match="2D or 3D"):
        case_figure(np.zeros(4), np.zeros(4), np.zeros(4), tmp_path / "c.png", case="c")
