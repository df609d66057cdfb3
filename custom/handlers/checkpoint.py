"""Checkpoint handlers that write atomically and resume exactly.

MONAI's ``CheckpointSaver`` writes in place (``atomic=False``) and names its files by epoch, so a run killed while
writing can leave a truncated file and a restart has to find the newest one. These two handlers keep one file each,
always written to a temporary file then renamed over the old one:

- ``ResumableCheckpoint``: the whole training state (networks, optimizers, LR schedulers, the trainer's epoch and
  iteration, the best-model saver's best value, and the random number generators: torch's, NumPy's, Python's and
  those of the random transforms), saved every ``save_interval`` epochs and loaded at start when it exists, so a
  killed run continues with the same epoch, optimizer, LR schedule and random draws as if it had not stopped.
- ``BestModelSaver``: the model zoo's ``models/model.pt`` (the generator's plain state dict, which loads strictly into
  the bundle's ``network_def``), saved on the evaluator whenever the key validation metric improves (lower is better
  by default, e.g. MAE in HU), with ``models/model.json`` beside it: the config inference needs to rebuild that
  network and prepare data as in training (``custom.model_record.model_config_path``).

Checkpoints are loaded with ``torch.load(..., weights_only=True)``. In a distributed run (``torchrun``,
``multi_gpu_train.json``) every process loads, only the first one (rank 0) writes, and networks wrapped in
``DistributedDataParallel`` are saved without the wrapper (no ``module.`` prefix), so that a checkpoint written by
several GPUs resumes on one and ``model.pt`` loads strictly into ``network_def``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections.abc import Mapping
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from monai.transforms import Randomizable

from custom.errors import InputError, short_reason
from custom.model_record import check_model_record, model_config_path
from custom.outputs import atomic_write, remove_stale_temp_files, write_text

__all__ = ["atomic_torch_save", "unwrap", "random_states", "set_random_states", "ResumableCheckpoint", "BestModelSaver"]

logger = logging.getLogger(__name__)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``."""
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def unwrap(module: Any) -> Any:
    """The module inside a ``DistributedDataParallel`` or ``DataParallel`` wrapper; anything else unchanged."""
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    return module.module if isinstance(module, wrappers) else module


def _state_dicts(objects: Mapping[str, Any]) -> dict[str, Any]:
    return {name: unwrap(obj).state_dict() for name, obj in objects.items()}


def _random_generators(transforms: Any) -> list[np.random.RandomState]:
    """Every NumPy generator (``.R``) of the transforms, nested ones included (``RandAffined`` keeps a ``RandAffine``
    with a generator of its own), once each, in a fixed order: a walk over lists, dicts and attributes."""
    found: dict[int, np.random.RandomState] = {}
    seen: set[int] = set()

    def walk(item: Any, depth: int) -> None:
        if depth > 8 or id(item) in seen or isinstance(item, (torch.Tensor, np.ndarray, str, bytes, int, float)):
            return
        seen.add(id(item))
        if isinstance(item, np.random.RandomState):
            found.setdefault(id(item), item)
            return
        children = item.values() if isinstance(item, Mapping) else item if isinstance(item, (list, tuple)) else None
        if children is None:
            if isinstance(item, Randomizable):
                walk(item.R, depth + 1)
            children = [v for k, v in getattr(item, "__dict__", {}).items() if not k.startswith("__")]
        for child in children:
            walk(child, depth + 1)

    walk(transforms, 0)
    return list(found.values())


def _numpy_state(state: tuple) -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = state
    return {"name": name, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}  # fmt: skip


def _from_numpy_state(state: Mapping[str, Any]) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return state["name"], keys, state["pos"], state["has_gauss"], state["gauss"]


def random_states(transforms: Any = None) -> dict[str, Any]:
    """The states of torch's (CPU and CUDA), NumPy's and Python's global generators and of every random transform
    in ``transforms``, as tensors and plain values (loadable with ``weights_only=True``)."""
    python = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": _numpy_state(np.random.get_state()),
        "python": [python[0], list(python[1]), python[2]],
        "transforms": [_numpy_state(generator.get_state()) for generator in _random_generators(transforms)],
    }


def set_random_states(states: Mapping[str, Any], transforms: Any = None) -> None:
    """Restore what :func:`random_states` returned (the transforms must be the same pipeline)."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    np.random.set_state(_from_numpy_state(states["numpy"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    generators = _random_generators(transforms)
    if len(generators) != len(states["transforms"]):
        raise ValueError(
            f"the checkpoint has the states of {len(states['transforms'])} random generators of transforms, the "
            f"training pipeline has {len(generators)}: it was written by a different training config."
        )
    for generator, state in zip(generators, states["transforms"]):
        generator.set_state(_from_numpy_state(state))


class ResumableCheckpoint:
    """Save the full training state every ``save_interval`` epochs and resume from it at start.

    Args:
        save_path: checkpoint file, e.g. ``models/checkpoint_last.pt``.
        save_dict: objects with ``state_dict``/``load_state_dict`` (networks, optimizers, schedulers, ...); the
            engine the handler is attached to is added as ``"trainer"`` (its epoch and iteration).
        save_interval: epochs between saves.
        resume: load ``save_path`` at ``Events.STARTED`` when it exists.
        random_transforms: the training transforms (e.g. ``@train#preprocessing``) whose random states are saved
            with the global generators', so a resumed run draws the same crops and flips as an uninterrupted one.
    """

    def __init__(
        self,
        save_path: str,
        save_dict: Mapping[str, Any],
        save_interval: int = 1,
        resume: bool = True,
        random_transforms: Any = None,
    ) -> None:
        if save_interval < 1:
            raise ValueError(f"save_interval must be >= 1, got {save_interval}.")
        if not save_dict:
            raise ValueError("save_dict must name at least one object to save.")
        self.save_path = str(save_path)
        self.save_dict = dict(save_dict)
        self.save_interval = save_interval
        self.resume = resume
        self.random_transforms = random_transforms

    def attach(self, engine: Engine) -> None:
        self.save_dict.setdefault("trainer", engine)
        engine.add_event_handler(Events.STARTED, self.load)
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self.save)
        engine.add_event_handler(Events.COMPLETED, self.save)

    def load(self, engine: Engine) -> None:
        if idist.get_rank() == 0:  # a run killed while writing leaves a temporary file: it is never read, remove it
            for leftover in remove_stale_temp_files(self.save_path):
                logger.info(f"Removed {leftover}, a partial checkpoint of an earlier run.")
        if not self.resume or not os.path.exists(self.save_path):
            return
        max_epochs = engine.state.max_epochs
        try:
            checkpoint = torch.load(self.save_path, map_location=engine.state.device, weights_only=True)
            Checkpoint.load_objects(to_load=self.save_dict, checkpoint=checkpoint, strict=True)
            if "random_states" in checkpoint:
                set_random_states(checkpoint["random_states"], self.random_transforms)
        except Exception as e:  # truncated (not by us: we write atomically), foreign, or of another config
            raise InputError(
                f"{self.save_path}: cannot resume from this checkpoint ({short_reason(e)}); "
                "delete it to start again, or train with --resume False"
            ) from e
        if max_epochs is not None and engine.state.epoch > max_epochs:
            raise InputError(
                f"{self.save_path}: checkpoint is at epoch {engine.state.epoch}, beyond max_epochs={max_epochs}; "
                "raise --epochs to train further, or delete the checkpoint to start again."
            )
        engine.state.max_epochs = max_epochs  # the config's value wins, so a run can be extended
        logger.info(f"Resumed from {self.save_path} at epoch {engine.state.epoch}.")

    def save(self, engine: Engine) -> None:
        if idist.get_rank() > 0:  # every process holds the same state; one writes it
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.save_path)), exist_ok=True)
        state = _state_dicts(self.save_dict)
        state["random_states"] = random_states(self.random_transforms)
        atomic_torch_save(state, self.save_path)


class BestModelSaver:
    """Save ``network.state_dict()`` (plain, no wrapper key) whenever the evaluator's key metric improves, and the
    model's config beside it (``model.pt`` -> ``model.json``: ``{"config": config, "best": metric, value, epoch}``).

    Attach to the evaluator. Its ``state_dict`` (best value and epoch) goes into the resumable checkpoint so that a
    resumed run does not overwrite a better model with a worse one.

    Args:
        save_path: e.g. ``models/model.pt``.
        network: the network whose weights are saved (the generator, i.e. the bundle's ``network_def``; a
            ``DistributedDataParallel`` wrapper is removed).
        metric_name: key in ``engine.state.metrics``; default the evaluator's key metric.
        mode: ``"min"`` (lower is better, e.g. MAE) or ``"max"``.
        config: inference config overrides that rebuild this model (``network_def`` as data, windows, orientation,
            patch size): ``python -m custom infer --ckpt model.pt`` applies them. Checked here against the schema
            that reading applies (:mod:`custom.model_record`), so that training never writes a record inference
            would refuse.
    """

    def __init__(
        self,
        save_path: str,
        network: torch.nn.Module,
        metric_name: str | None = None,
        mode: str = "min",
        config: Mapping[str, Any] | None = None,
    ):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        self.save_path = str(save_path)
        self.network = network
        self.metric_name = metric_name
        self.mode = mode
        self.config = dict(config or {})
        check_model_record(self.config, f"{model_config_path(self.save_path)} (the config's model_record)")
        self.best_value = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _improved(self, value: float) -> bool:
        return value < self.best_value if self.mode == "min" else value > self.best_value

    def __call__(self, engine: Engine) -> None:
        name = self.metric_name or getattr(engine.state, "key_metric_name", None)
        if name is None or name not in engine.state.metrics:
            raise KeyError(
                f"BestModelSaver: metric {name!r} not in the evaluator's metrics {list(engine.state.metrics)}."
            )
        value = float(engine.state.metrics[name])
        if math.isfinite(value) and self._improved(value):  # on every process, so that their states agree
            self.best_value, self.best_epoch = value, int(engine.state.epoch)
            if idist.get_rank() > 0:
                return
            best = {"metric": name, "value": value, "epoch": self.best_epoch}
            record = json.dumps({"config": self.config, "best": best}, indent=2)
            write_text(record + "\n", model_config_path(self.save_path))
            atomic_torch_save(unwrap(self.network).state_dict(), self.save_path)
            logger.info(f"New best {name} = {value:.4f} at epoch {self.best_epoch}: saved {self.save_path}")

    def state_dict(self) -> dict:
        return {"best_value": self.best_value, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best_value = float(state["best_value"])
        self.best_epoch = int(state["best_epoch"])
