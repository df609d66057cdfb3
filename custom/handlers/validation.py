"""Validation every N epochs *and* at the end of training, so that no run ends with its last epochs unscored.

MONAI's ``ValidationHandler`` validates every ``interval`` epochs only. When the number of epochs is not a multiple of
the interval (``--epochs 2`` with the default interval 5), or when a time budget (``custom.handlers.TrainingBudget``)
ends training between two validations, the epochs after the last validation are never scored: in the first case
training ends without any ``model.pt`` and looks successful. ``ValidationSchedule`` validates once more when training
ends (``Events.COMPLETED``, which Ignite also fires after ``terminate()``) if the last epoch was not validated.

Place it before the checkpoint handler in ``train#handlers`` so that the checkpoint written at the end of training
holds the final validation's best value.
"""

from __future__ import annotations

from ignite.engine import Engine, Events
from monai.handlers import ValidationHandler

__all__ = ["ValidationSchedule"]


class ValidationSchedule(ValidationHandler):
    """``monai.handlers.ValidationHandler`` (epoch level) that also validates the last epoch of training.

    Args:
        interval: validate every ``interval`` epochs, and after the last epoch.
        validator: the evaluator to run (e.g. ``@validate#evaluator``).
        exec_at_start: also validate before the first epoch.
    """

    def __init__(self, interval: int, validator=None, exec_at_start: bool = False) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"ValidationSchedule: interval must be an integer >= 1, got {interval!r}.")
        super().__init__(interval=interval, validator=validator, epoch_level=True, exec_at_start=exec_at_start)
        self.last_validated_epoch: int | None = None

    def attach(self, engine: Engine) -> None:
        super().attach(engine)
        engine.add_event_handler(Events.COMPLETED, self._at_end)

    def __call__(self, engine: Engine) -> None:
        super().__call__(engine)
        self.last_validated_epoch = engine.state.epoch

    def _at_end(self, engine: Engine) -> None:
        if engine.state.epoch > 0 and self.last_validated_epoch != engine.state.epoch:
            self(engine)
