"""Which handlers run on which process of a distributed run.

Every process runs the handlers that keep the processes in step (validation, checkpoints, LR schedules, budgets);
only the first (rank 0) also runs those that write logs and figures, so a run of N processes writes them once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ignite.distributed as idist
from monai.handlers import StatsHandler, TensorBoardStatsHandler

from custom.handlers.sample_grid import SampleGridSaver
from custom.handlers.training_log import TrainingLogWriter

__all__ = ["MAIN_PROCESS_ONLY", "on_this_rank"]

MAIN_PROCESS_ONLY = (StatsHandler, TensorBoardStatsHandler, SampleGridSaver, TrainingLogWriter)


def on_this_rank(handlers: Sequence[Any]) -> list[Any]:
    """``handlers`` as this process runs them: all of them on rank 0 (and in a single process), on the other ranks all
    but the loggers and figure writers of :data:`MAIN_PROCESS_ONLY`."""
    if idist.get_rank() == 0:
        return list(handlers)
    return [h for h in handlers if not isinstance(h, MAIN_PROCESS_ONLY)]
