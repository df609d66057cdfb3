"""TrainingBudget: the LR schedule on the progress of training, the stop at a wall-clock budget, and its resume state.
Time is simulated (``time.perf_counter`` patched), so nothing here depends on the machine's speed."""

from __future__ import annotations

import pytest
from ignite.engine import Engine, Events

import custom.handlers.training_budget as budget_module
from custom.handlers import TrainingBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(budget_module.time, "perf_counter", clock)
    return clock


def run(budget: TrainingBudget, clock: FakeClock, max_epochs: int, seconds_per_epoch: float) -> Engine:
    engine = Engine(lambda e, b: None)
    budget.attach(engine)
    engine.add_event_handler(Events.EPOCH_STARTED, lambda e: setattr(clock, "now", clock.now + seconds_per_epoch))
    engine.run([0], max_epochs=max_epochs)
    return engine


def test_epoch_schedule_without_minutes_is_constant_then_linear():
    budget = TrainingBudget(decay_start_fraction=0.5)
    budget.max_epochs = 10
    assert [budget.lr_factor(e) for e in (0, 5, 6, 8, 10)] == pytest.approx([1.0, 1.0, 0.8, 0.4, 0.0])


def test_decay_start_one_keeps_the_lr_constant():
    budget = TrainingBudget(decay_start_fraction=1.0)
    budget.max_epochs = 10
    assert [budget.lr_factor(e) for e in (0, 5, 10, 12)] == [1.0, 1.0, 1.0, 1.0]


def test_stops_when_the_next_epoch_would_not_fit(clock):
    budget = TrainingBudget(minutes=1.0)  # 60 s, 7 s per epoch: 8 epochs fit (56 s), a 9th would not
    engine = run(budget, clock, max_epochs=100, seconds_per_epoch=7.0)
    assert engine.state.epoch == 8


def test_lr_decays_with_time_when_time_runs_out_first(clock):
    budget = TrainingBudget(minutes=1.0, decay_start_fraction=0.5)
    factors = []
    engine = Engine(lambda e, b: None)
    budget.attach(engine)
    engine.add_event_handler(Events.EPOCH_STARTED, lambda e: setattr(clock, "now", clock.now + 10.0))
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: factors.append(budget.lr_factor(e.state.epoch)))
    engine.run([0], max_epochs=1000)
    assert factors[0] == 1.0  # 10 s of 60: constant
    assert factors == sorted(factors, reverse=True) and factors[-1] < 0.5  # decays with the time spent


def test_resume_continues_the_same_budget(clock):
    first = TrainingBudget(minutes=1.0)
    run(first, clock, max_epochs=3, seconds_per_epoch=10.0)  # 3 epochs, 20 s counted before the last one started
    second = TrainingBudget(minutes=1.0)
    second.load_state_dict(first.state_dict())
    engine = run(second, clock, max_epochs=100, seconds_per_epoch=10.0)
    assert 3 <= engine.state.epoch <= 4  # about 60 s in all, not 60 s more


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="minutes"):
        TrainingBudget(minutes=0)
    with pytest.raises(ValueError, match="decay_start_fraction"):
        TrainingBudget(decay_start_fraction=1.5)
