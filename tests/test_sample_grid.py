"""SampleGridSaver: a figure of the last batch per epoch, with configurable columns and target units."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from PIL import Image

from custom.ct_range import map_range
from custom.handlers import SampleGridSaver

CT_WINDOW = (-1024.0, 3071.0)


def batch(n: int = 3, shape: tuple[int, ...] = (1, 32, 32)) -> dict[str, torch.Tensor]:
    image = torch.linspace(-1, 1, n * int(np.prod(shape))).reshape(n, *shape)
    return {"image": image, "label": torch.ones(n, *shape), "pred": torch.zeros(n, *shape), "loss": torch.tensor(0.5)}


def decollated(output: dict) -> list[dict]:
    """One dict per sample, as MONAI's engines leave ``state.output``."""
    n = len(output["image"])
    return [{k: (v[i] if v.ndim else v) for k, v in output.items()} for i in range(n)]


def run(saver: SampleGridSaver, output, epochs: int = 1) -> Engine:
    engine = Engine(lambda engine, item: output)
    saver.attach(engine)
    engine.run([0, 1], max_epochs=epochs)
    return engine


def test_map_range_shows_network_values_in_target_units():
    assert map_range(1.0, (-1.0, 1.0), CT_WINDOW) == 3071.0
    assert map_range(-1.0, (-1.0, 1.0), CT_WINDOW) == -1024.0
    np.testing.assert_allclose(map_range(np.array([0.0, 0.5]), (-1.0, 1.0), (0.0, 255.0)), [127.5, 191.25])


def test_writes_one_titled_figure_per_epoch_from_decollated_output(tmp_path):
    saver = SampleGridSaver(str(tmp_path), max_samples=2, target_range=CT_WINDOW, units="HU")
    run(saver, decollated(batch()), epochs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_epoch0001.png", "train_epoch0002.png"]
    with Image.open(tmp_path / "train_epoch0001.png") as figure:
        width, height = figure.size
    assert width > 4 * 160 and 2 * 160 < height < width  # four columns of two rows of (enlarged) 32-pixel samples

    columns = saver.columns()
    assert [c.title for c in columns] == ["MR", "CT", "sCT", "|sCT - CT|"]
    assert [c.units for c in columns] == ["a.u.", "HU", "HU", "HU"]
    assert [c.window for c in columns] == [(-1.0, 1.0), CT_WINDOW, CT_WINDOW, (0.0, (3071.0 + 1024.0) / 8)]
    rows = saver.rows(decollated(batch()))
    assert len(rows) == 2 and all(len(row) == 4 for row in rows)
    assert np.all(rows[0][1] == 3071.0) and np.all(rows[0][2] == 1023.5)  # label 1.0 and pred 0.0, in HU
    assert np.all(rows[0][3] == 3071.0 - 1023.5)  # the error in HU
    np.testing.assert_array_equal(rows[0][0], batch()["image"][0, 0].numpy())  # MR kept in network units


def test_keys_and_titles_choose_the_columns(tmp_path):
    saver = SampleGridSaver(
        str(tmp_path), keys=("image", "pred"), titles=("MR", "sCT"), target_keys=("pred",), error=None, prefix="val"
    )
    engine = run(saver, decollated(batch()))
    assert [c.title for c in saver.columns()] == ["MR", "sCT"]
    assert [c.units for c in saver.columns()] == ["a.u.", "a.u."]  # no target_range: nothing mapped
    assert len(saver.rows(engine.state.output)) == 3 and len(saver.rows(engine.state.output)[0]) == 2
    with Image.open(tmp_path / "val_epoch0001.png") as figure:
        width, height = figure.size
    assert width < 3 * 160 and height > 3 * 160  # two columns, three rows


def test_batched_output_and_volumes_give_the_middle_slice(tmp_path):
    output = batch(n=2, shape=(2, 8, 8, 5))
    output["pred"][..., 2] = 1.0  # the middle slice of the last axis
    saver = SampleGridSaver(str(tmp_path), target_range=(0.0, 255.0), units="grey level", error_max=64.0)
    rows = saver.rows(output)
    assert len(rows) == 2 and rows[0][0].shape == (8, 8)
    assert np.all(rows[0][2] == 255.0) and np.all(rows[0][3] == 0.0)
    assert saver.columns()[3].window == (0.0, 64.0)
    run(saver, output)
    assert [p.name for p in tmp_path.iterdir()] == ["train_epoch0001.png"]  # no temporary file left


def test_missing_keys_are_named(tmp_path):
    saver = SampleGridSaver(str(tmp_path), keys=("image", "mask"), titles=("MR", "mask"), target_keys=(), error=None)
    with pytest.raises(KeyError, match="mask"):
        saver.rows(decollated(batch()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"every": 0}, "every"),
        ({"max_samples": 0}, "max_samples"),
        ({"titles": ("MR", "CT")}, "same length"),
        ({"error": ("pred", "mask")}, "error"),
        ({"target_keys": ("label", "mask")}, "target_keys"),
        ({"target_keys": ("label",), "target_range": CT_WINDOW}, "both be target keys"),
        ({"value_range": (1.0, -1.0)}, "value_range"),
        ({"target_range": (3071.0, -1024.0)}, "target_range"),
        ({"orientation": "lps"}, "orientation"),
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        SampleGridSaver(str(tmp_path), **kwargs)
