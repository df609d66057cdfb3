"""Ignite handler that scores the synthetic CTs an inference run wrote, once the run completes.

It calls :func:`custom.scoring.evaluate_datalist` (SynthRAD 2023 and 2025 protocols, bone Dice) on the cases of a
datalist split, which writes ``metrics.csv`` and ``summary.json``, saves one figure per case (``figures/<case>.png``:
MR | CT | sCT | |error| on three orthogonal middle slices, with colour bars) and logs the summary table.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from ignite.engine import Engine, Events

from custom.data.datalist import evaluation_split, read_datalist
from custom.images import read_image
from custom.metrics import format_summary
from custom.outputs import uncertainty_file_name
from custom.scoring import RegionFn, evaluate_datalist, scored_cases
from custom.visualize import case_figure

__all__ = ["SCTEvaluationHandler"]

logger = logging.getLogger(__name__)


class SCTEvaluationHandler:
    """At ``Events.COMPLETED``, score ``<pred_dir>/<case>_sct.*`` against the datalist's CTs and save figures.

    Args:
        datalist: datalist JSON (or its content, read once per run) with ``image``, ``label`` (and ``mask``) per case.
        pred_dir: folder of the synthetic CTs.
        out_dir: where ``metrics.csv``, ``summary.json`` and ``figures/`` go; default ``pred_dir``.
        split: datalist split that was inferred; default ``test``, or ``validation`` when ``test`` is empty.
        protocols: ``"all"``, ``"synthrad2023"`` or ``"synthrad2025"``.
        display_window: display window of CT and sCT in the figures (HU; 8-bit datalists use (0, 255)).
        error_max: top of the error display window (HU; 8-bit datalists use 64 grey levels).
        region_fn: ``region_fn(item, ct)``, a region per case for ``local_ssim`` (see
            :func:`custom.scoring.evaluate_datalist`), e.g. ``custom.data.lidc.nodule_region``.
        input_title: title of the figures' first column, the network's input (``"MR"``, ``"lung mask"``).
    """

    def __init__(
        self,
        datalist: str | dict,
        pred_dir: str,
        out_dir: str | None = None,
        split: str | None = None,
        protocols: str = "all",
        display_window: Sequence[float] = (-1000.0, 1600.0),
        error_max: float = 500.0,
        region_fn: RegionFn | None = None,
        input_title: str = "MR",
    ) -> None:
        self.datalist = datalist
        self.pred_dir = pred_dir
        self.out_dir = out_dir or pred_dir
        self.split = split
        self.protocols = protocols
        self.display_window = tuple(float(v) for v in display_window)
        self.error_max = float(error_max)
        self.region_fn = region_fn
        self.input_title = str(input_title)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine | None = None) -> dict:
        data = read_datalist(self.datalist)
        rows, summary = evaluate_datalist(
            data,
            self.pred_dir,
            out_dir=self.out_dir,
            protocols=self.protocols,
            split=self.split,
            region_fn=self.region_fn,
        )
        self.save_figures(data, summary["split"])
        logger.info("sCT evaluation (%s cases) -> %s\n%s", len(rows), self.out_dir, format_summary(summary["metrics"]))
        return summary

    def save_figures(self, data: dict, split: str | None = None) -> list[str]:
        """One figure per case of the scored ``split``, ``<out_dir>/figures/<case>.png``; with the case's uncertainty
        map beside its sCT (``<case>_sct_std.nii.gz``, from ``--uncertainty``) a column of it too."""
        eight_bit = bool(data.get("eight_bit"))
        window, error_max, units = (
            ((0.0, 255.0), 64.0, "grey level") if eight_bit else (self.display_window, self.error_max, "HU")
        )
        paths = []
        for case in scored_cases(data, evaluation_split(data, split), self.pred_dir):
            mr, ct, sct = (read_image(p)[0] for p in (case.mr, case.ct, case.pred))
            spread = os.path.join(self.pred_dir, uncertainty_file_name(case.case))
            path = os.path.join(self.out_dir, "figures", f"{case.case}.png")
            paths.append(
                case_figure(
                    mr,
                    ct,
                    sct,
                    path,
                    case=case.case,
                    display_window=window,
                    error_max=error_max,
                    units=units,
                    input_title=self.input_title,
                    uncertainty=read_image(spread)[0] if os.path.isfile(spread) else None,
                )
            )
        return paths
