"""TrainingLogWriter: one tab-separated line of epoch metrics every N epochs, appended across resumed runs."""

from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Engine, Events

from custom.handlers import TrainingLogWriter


def trainer_and_evaluator(start_epoch: int = 0) -> tuple[Engine, Engine]:
    """A trainer whose epoch metrics are loss_g = epoch, loss_d = 1 / epoch; the evaluator's val_ssim is set at the
    end of even epochs only (validation every other epoch)."""
    trainer, evaluator = Engine(lambda e, b: None), Engine(lambda e, b: None)
    evaluator.state.metrics = {}

    @trainer.on(Events.EPOCH_COMPLETED)
    def metrics(engine):
        engine.state.metrics.update(loss_g=float(engine.state.epoch), loss_d=1.0 / engine.state.epoch)
        if engine.state.epoch % 2 == 0:
            evaluator.state.metrics["val_ssim"] = engine.state.epoch / 10

    if start_epoch:
        trainer.state.epoch = trainer.state.iteration = start_epoch
    return trainer, evaluator


def rows(path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_a_line_every_n_epochs_with_validation_metrics(tmp_path):
    path = tmp_path / "runs" / "training_log.tsv"
    trainer, evaluator = trainer_and_evaluator()
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0002)
    TrainingLogWriter(str(path), every=2, evaluator=evaluator, optimizer=optimizer).attach(trainer)
    trainer.run([0], max_epochs=5)
    lines = rows(path)
    assert lines[0] == ["epoch", "time", "lr", "loss_g", "loss_d", "val_ssim"]
    assert [line[0] for line in lines[1:]] == ["2", "4"]
    assert lines[1][2:] == ["0.0002", "2", "0.5", "0.2"] and lines[2][3:] == ["4", "0.25", "0.4"]
    assert lines[1][1][:4].isdigit() and "T" in lines[1][1]


def test_a_resumed_run_appends_and_a_missing_value_is_nan(tmp_path):
    path = tmp_path / "log.tsv"
    trainer, evaluator = trainer_and_evaluator()
    writer = TrainingLogWriter(str(path), every=3, metrics=["loss_g", "val_ssim"], evaluator=evaluator)
    writer.attach(trainer)
    trainer.run([0], max_epochs=3)  # no validation after epoch 3 yet: val_ssim of epoch 2 ... and at epoch 3
    evaluator.state.metrics.clear()
    resumed, evaluator = trainer_and_evaluator()
    TrainingLogWriter(str(path), every=3, metrics=["loss_g", "val_ssim"], evaluator=evaluator).attach(resumed)
    resumed.run([0], max_epochs=3)
    lines = rows(path)
    assert [line[0] for line in lines] == ["epoch", "3", "3"]  # one header, lines appended
    assert lines[1][2:] == ["3", "0.2"]  # the latest validation (epoch 2)


def test_new_columns_get_a_new_header_not_an_error(tmp_path, caplog):
    path = tmp_path / "log.tsv"
    trainer, _ = trainer_and_evaluator()
    TrainingLogWriter(str(path), every=1, metrics=["loss_g"]).attach(trainer)
    trainer.run([0], max_epochs=1)
    other, _ = trainer_and_evaluator()
    TrainingLogWriter(str(path), every=1, metrics=["loss_g", "loss_d"]).attach(other)
    with caplog.at_level(logging.WARNING):
        other.run([0], max_epochs=1)
    assert [line[0] for line in rows(path)] == ["epoch", "1", "epoch", "1"] and "columns changed" in caplog.text
    assert rows(path)[2] == ["epoch", "time", "loss_g", "loss_d"]


@pytest.mark.parametrize(
    "kwargs, message",
    [({"every": 0}, "every"), ({"metrics": ["a", "a"]}, "distinct"), ({"metrics": ["epoch"]}, "epoch")],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingLogWriter(str(tmp_path / "log.tsv"), **kwargs)
