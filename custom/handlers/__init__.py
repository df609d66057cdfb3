"""Ignite handlers wired from the bundles' JSON configs."""

from custom.handlers.background_writes import BackgroundNibabelWriter, BackgroundWrites, wait_for_background_writes
from custom.handlers.checkpoint import BestModelSaver, ResumableCheckpoint, atomic_torch_save
from custom.handlers.evaluation import SCTEvaluationHandler
from custom.handlers.ranks import on_this_rank
from custom.handlers.sample_grid import SampleGridSaver
from custom.handlers.training_budget import TrainingBudget
from custom.handlers.training_log import TrainingLogWriter
from custom.handlers.validation import ValidationSchedule

__all__ = [
    "BackgroundNibabelWriter",
    "BackgroundWrites",
    "BestModelSaver",
    "ResumableCheckpoint",
    "SCTEvaluationHandler",
    "SampleGridSaver",
    "TrainingBudget",
    "TrainingLogWriter",
    "ValidationSchedule",
    "atomic_torch_save",
    "on_this_rank",
    "wait_for_background_writes",
]
