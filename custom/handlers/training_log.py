"""Ignite handler appending one line of epoch metrics to a training log file every N epochs.

The file is tab-separated text with a header line, one row per logged epoch, so it can be read by eye, ``tail -f``-ed
during a run, or loaded with ``pandas.read_csv(path, sep="\\t")``::

    epoch   time                 lr       loss_g   loss_d   loss_adv  loss_l1  loss_ssim  val_mae  val_ssim
    5       2025-01-01T10:00:00  0.0002   14.2     0.52     1.91      0.089    0.41       21.3     0.62

Columns: ``epoch``, the wall-clock ``time``, the generator's learning rate (``lr``, with ``optimizer``), then the
trainer's epoch metrics (``engine.state.metrics``: the epoch averages of every loss term) and the evaluator's latest
metrics (the validation run of that epoch when validation runs every epoch; ``nan`` before the first one). A resumed
run appends to the same file; if its columns differ from the file's header (another loss recipe), a new header line
is written first and a warning logged, rather than stopping the training.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence

from ignite.engine import Engine, Events
from torch.optim.optimizer import Optimizer

__all__ = ["TrainingLogWriter"]

logger = logging.getLogger(__name__)


def _cell(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return "nan" if math.isnan(number) else f"{number:.6g}"


class TrainingLogWriter:
    """Append ``epoch, time, [lr,] metrics...`` to ``path`` at the end of every ``every``-th epoch (see the module
    docstring).

    Args:
        path: the log file, e.g. ``runs/training_log.tsv`` (its folder is created).
        every: epochs between lines (>= 1).
        metrics: the metric columns, looked up in the trainer's metrics then in the evaluator's; default: every
            trainer metric, then every evaluator metric, as they are at the first line written.
        evaluator: the validation engine whose latest ``state.metrics`` are logged too.
        optimizer: adds the column ``lr``, the learning rate of its first parameter group.
    """

    def __init__(
        self,
        path: str,
        every: int = 5,
        metrics: Sequence[str] | None = None,
        evaluator: Engine | None = None,
        optimizer: Optimizer | None = None,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"TrainingLogWriter: every must be an integer >= 1, got {every!r}.")
        if metrics is not None:
            metrics = [str(m) for m in metrics]
            if len(set(metrics)) != len(metrics) or {"epoch", "time", "lr"} & set(metrics):
                raise ValueError(f"TrainingLogWriter: metrics must be distinct and not epoch/time/lr, got {metrics}.")
        self.path = str(path)
        self.every = every
        self.metrics = metrics
        self.evaluator = evaluator
        self.optimizer = optimizer

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self)

    def _sources(self, engine: Engine) -> list[dict]:
        sources = [dict(engine.state.metrics)]
        if self.evaluator is not None and getattr(self.evaluator, "state", None) is not None:
            sources.append(dict(self.evaluator.state.metrics))
        return sources

    def columns(self, engine: Engine) -> list[str]:
        """The header of the file: ``epoch``, ``time``, ``lr`` (with an optimizer), then the metrics."""
        names = self.metrics
        if names is None:
            names = []
            for source in self._sources(engine):
                names += [k for k in source if k not in names]
        return ["epoch", "time"] + (["lr"] if self.optimizer is not None else []) + list(names)

    def row(self, engine: Engine) -> list[str]:
        """The cells of this epoch's line, in the order of :meth:`columns`."""
        sources = self._sources(engine)
        cells = [str(engine.state.epoch), time.strftime("%Y-%m-%dT%H:%M:%S")]
        if self.optimizer is not None:
            cells.append(_cell(self.optimizer.param_groups[0]["lr"]))
        for name in self.columns(engine)[len(cells) :]:
            value = next((source[name] for source in sources if name in source), math.nan)
            cells.append(_cell(value))
        return cells

    def _header(self) -> str | None:
        """The last header line of the file (a resumed run may have written several), or None when it is new."""
        if not os.path.isfile(self.path) or os.path.getsize(self.path) == 0:
            return None
        header = None
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("epoch\t"):
                    header = line.rstrip("\n")
        return header

    def __call__(self, engine: Engine) -> str:
        header = "\t".join(self.columns(engine))
        lines = []
        existing = self._header()
        if existing != header:
            if existing is not None:
                logger.warning(f"{self.path}: the logged columns changed; a new header line is written.")
            lines.append(header)
        lines.append("\t".join(self.row(engine)))
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(lines) + "\n")
        return lines[-1]
