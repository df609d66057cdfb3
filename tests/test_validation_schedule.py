"""ValidationSchedule validates every N epochs and once more after the last epoch, also when a budget stops training."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest
from ignite.engine import Engine, Events
from monai.engines import Evaluator

from custom.handlers import ValidationSchedule


def train(max_epochs: int, interval: int, stop_after: int | None = None) -> list[int]:
    validator = MagicMock(spec=Evaluator)  # records the epochs it is run with
    trainer = Engine(lambda engine, batch: None)
    ValidationSchedule(interval=interval, validator=validator).attach(trainer)
    if stop_after is not None:
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after), lambda engine: engine.terminate())
    trainer.run([0], max_epochs=max_epochs)
    return [call.args[0] for call in validator.run.call_args_list]


def test_every_interval_and_the_last_epoch():
    assert train(max_epochs=4, interval=2) == [2, 4]  # the last epoch is validated once, not twice
    assert train(max_epochs=5, interval=2) == [2, 4, 5]
    assert train(max_epochs=2, interval=5) == [2]  # fewer epochs than the interval still leave a model


def test_a_budget_that_stops_training_early_still_validates_the_last_epoch():
    assert train(max_epochs=100, interval=10, stop_after=13) == [10, 13]


def test_interval_is_checked():
    with pytest.raises(ValueError, match="interval"):
        ValidationSchedule(interval=0)
