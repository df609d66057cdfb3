"""Ignite handler that scores the synthetic CTs an inference run wrote, once the run completes.

It calls ``custom.metrics.evaluate.evaluate_datalist`` (SynthRAD 2023 and 2025 protocols, bone Dice) on the cases of
a datalist split, which writes ``metrics.csv`` and ``summary.json``, saves one figure per case
(``figures/<case>.png``: MR | CT | sCT | |error| on three orthogonal middle slices) and logs a summary table.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from ignite.engine import Engine, Events

from custom.data.datalist import read_datalist
from custom.io import case_name, read_image
from custom.metrics.evaluate import evaluate_datalist
from custom.visualize import case_figure

__all__ = ["SCTEvaluationHandler", "format_summary"]

logger = logging.getLogger(__name__)


def format_summary(summary: dict) -> str:
    """A plain-text table ``metric  mean  std  median  n`` of a ``summary.json`` content."""
    lines = [f"{'metric':<22}{'mean':>12}{'std':>12}{'median':>12}{'n':>5}"]
    for name, stats in summary.items():
        if not isinstance(stats, dict) or "mean" not in stats:
            continue
        cells = [stats.get(k) for k in ("mean", "std", "median")]
        text = "".join(f"{c:>12.4f}" if isinstance(c, (int, float)) else f"{'-':>12}" for c in cells)
        lines.append(f"{name:<22}{text}{stats.get('n', ''):>5}")
    return "\n".join(lines)


class SCTEvaluationHandler:
    """At ``Events.COMPLETED``, score ``<pred_dir>/<case>_sct.*`` against the datalist's CTs and save figures.

    Args:
        datalist: datalist JSON with ``image``, ``label`` (and ``mask``) per case.
        pred_dir: folder of the synthetic CTs.
        out_dir: where ``metrics.csv``, ``summary.json`` and ``figures/`` go; default ``pred_dir``.
        split: datalist split that was inferred; default ``test``, or ``validation`` when ``test`` is empty.
        protocols: ``"all"``, ``"synthrad2023"`` or ``"synthrad2025"``.
        ct_window: display window of CT and sCT in the figures.
        error_max: top of the error display window.
    """

    def __init__(
        self,
        datalist: str,
        pred_dir: str,
        out_dir: str | None = None,
        split: str | None = None,
        protocols: str = "all",
        ct_window: Sequence[float] = (-1000.0, 1600.0),
        error_max: float = 500.0,
    ) -> None:
        self.datalist = datalist
        self.pred_dir = pred_dir
        self.out_dir = out_dir or pred_dir
        self.split = split
        self.protocols = protocols
        self.ct_window = tuple(float(v) for v in ct_window)
        self.error_max = error_max

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine | None = None) -> dict:
        rows, summary = evaluate_datalist(
            self.datalist, self.pred_dir, out_dir=self.out_dir, protocols=self.protocols, split=self.split
        )
        self.save_figures(summary["split"])
        logger.info("sCT evaluation (%s cases) -> %s\n%s", len(rows), self.out_dir, format_summary(summary["metrics"]))
        return summary

    def save_figures(self, split: str) -> list[str]:
        """One figure per case of the scored ``split``, ``<out_dir>/figures/<case>.png``."""
        data = read_datalist(self.datalist)
        eight_bit = bool(data.get("eight_bit"))
        suffix, window = (".png", (0.0, 255.0)) if eight_bit else (".nii.gz", self.ct_window)
        error_max = 64.0 if eight_bit else self.error_max
        paths = []
        for item in data[split]:
            case = str(item.get("case") or case_name(item["label"]))
            mr, _ = read_image(item["image"])
            ct, _ = read_image(item["label"])
            sct, _ = read_image(os.path.join(self.pred_dir, f"{case}_sct{suffix}"))
            path = os.path.join(self.out_dir, "figures", f"{case}.png")
            paths.append(case_figure(mr, ct, sct, path, ct_window=window, error_max=error_max))
        return paths
