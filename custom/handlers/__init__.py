"""Ignite handlers wired from the bundles' JSON configs."""

from custom.handlers.checkpoint import BestModelSaver, ResumableCheckpoint, atomic_torch_save
from custom.handlers.evaluation import SCTEvaluationHandler
from custom.handlers.sample_grid import SampleGridSaver

__all__ = ["BestModelSaver", "ResumableCheckpoint", "SCTEvaluationHandler", "SampleGridSaver", "atomic_torch_save"]
