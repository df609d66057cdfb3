"""A training budget in epochs and, optionally, in wall-clock minutes, with the LR schedule fitted to it.

A user with a fixed budget ("25 minutes of this CPU") should not have to guess an epoch count. ``TrainingBudget``
measures the epochs as they run and ends training when the next epoch would not fit in ``minutes``; its
:meth:`lr_factor` is the schedule of pix2pix (constant, then linear decay to 0) on the *progress* of training,

    p = max(epoch / max_epochs, elapsed / budget),
    lr_factor = 1                                   for p <= s,
              = max(0, 1 - (p - s) / (1 - s))        for p > s,     s = decay_start_fraction,

so the decay ends when the budget does, whichever of the two runs out first. Without ``minutes`` it is the epoch
schedule of Isola et al. 2017 (constant for the first half, then linear to 0); ``decay_start_fraction=1`` keeps the LR
constant (the budget still ends training). The elapsed time is part of the
handler's ``state_dict``, so a resumed run continues the same budget (``custom.handlers.ResumableCheckpoint``).

Config (``train.json``)::

    "train": {"handlers": [{"_target_": "custom.handlers.TrainingBudget", "minutes": "@minutes",
                            "decay_start_fraction": "@decay_start_fraction"}, ...]},
    "training_budget": "@train#handlers#0",
    "lr_lambda": "$lambda epoch, budget=@training_budget: budget.lr_factor(epoch)",

(the handler is written inside ``train#handlers``, whose items MONAI's property checks expect to be dicts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import ignite.distributed as idist
from ignite.engine import Engine, Events

__all__ = ["TrainingBudget"]

logger = logging.getLogger(__name__)


class TrainingBudget:
    """End training at a wall-clock budget and give the LR schedule the progress of training.

    Args:
        minutes: wall-clock budget of the whole run (training and validation), or None for epochs only.
        decay_start_fraction: progress at which the linear LR decay starts, in [0, 1]; 1 = a constant LR.
    """

    def __init__(self, minutes: float | None = None, decay_start_fraction: float = 0.5) -> None:
        if minutes is not None and not float(minutes) > 0:
            raise ValueError(f"TrainingBudget: minutes must be > 0 (or None), got {minutes}.")
        if not 0.0 <= float(decay_start_fraction) <= 1.0:
            raise ValueError(f"TrainingBudget: decay_start_fraction must be in [0, 1], got {decay_start_fraction}.")
        self.seconds = None if minutes is None else 60.0 * float(minutes)
        self.decay_start = float(decay_start_fraction)
        self.elapsed = 0.0  # seconds spent in earlier epochs (of this run and of the run it resumes)
        self.epochs_timed = 0
        self.max_epochs = 1
        self._epoch_start: float | None = None
        self._running: float | None = None  # the time used at the end of the current epoch, as rank 0 measured it

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        # first of the EPOCH_COMPLETED handlers: the epoch's time includes what runs after it (validation) only from
        # the next epoch on, which the mean epoch time then accounts for
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _started(self, engine: Engine) -> None:
        self.max_epochs = max(1, int(engine.state.max_epochs or 1))
        if self.seconds is not None and self.elapsed >= self.seconds:
            logger.info(f"Training budget of {self.seconds / 60:.1f} min already used: nothing left to train.")
            engine.terminate()

    def _epoch_started(self, engine: Engine) -> None:
        now = time.perf_counter()
        if self._epoch_start is not None:  # the previous epoch, with the handlers that ran after it
            self.elapsed += now - self._epoch_start
            self.epochs_timed += 1
        self._epoch_start = now
        self._running = None

    def _epoch_completed(self, engine: Engine) -> None:
        if self.seconds is None or self._epoch_start is None:
            return
        running = self.elapsed + (time.perf_counter() - self._epoch_start)
        if idist.get_world_size() > 1:  # every process must stop, and schedule its LR, on the same clock
            running = float(idist.broadcast(running, src=0))
        self._running = running
        per_epoch = running / max(1, self.epochs_timed + 1)
        if running + per_epoch > self.seconds and engine.state.epoch < engine.state.max_epochs:
            logger.info(
                f"Training budget of {self.seconds / 60:.1f} min: stopping after epoch {engine.state.epoch} "
                f"({running / 60:.1f} min used, {per_epoch:.1f} s per epoch)."
            )
            engine.terminate()

    def progress(self, epoch: int) -> float:
        """Progress of training in [0, 1] after ``epoch`` epochs (see the module docstring)."""
        p = epoch / self.max_epochs
        if self.seconds is not None and self._epoch_start is not None:
            running = (
                self._running if self._running is not None else self.elapsed + time.perf_counter() - self._epoch_start
            )
            p = max(p, running / self.seconds)
        return min(1.0, p)

    def lr_factor(self, epoch: int) -> float:
        """The LR multiplier after ``epoch`` epochs: 1, then linear decay to 0 from ``decay_start_fraction`` on."""
        p = self.progress(epoch)  # in [0, 1], so decay_start = 1 never decays
        return 1.0 if p <= self.decay_start else max(0.0, 1.0 - (p - self.decay_start) / (1.0 - self.decay_start))

    def state_dict(self) -> dict:
        return {"elapsed": self.elapsed, "epochs_timed": self.epochs_timed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.elapsed = float(state["elapsed"])
        self.epochs_timed = int(state["epochs_timed"])
