"""Summaries of per-case metrics: statistics per column and the one table every command and handler prints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["summarize", "format_summary"]


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """Mean, standard deviation (population, ddof=0), median and count of every numeric column of ``rows``.

    Non-finite values (PSNR = inf for a perfect prediction) are left out of the statistics; ``n`` is the number of
    finite values used. Non-numeric columns (``case``) are skipped. Statistics of a column without any finite value
    are ``None``.
    """
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                columns.append(key)
    out: dict[str, dict[str, float | int | None]] = {}
    for key in columns:
        values = np.array([float(r[key]) for r in rows if key in r], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            out[key] = {"mean": None, "std": None, "median": None, "n": 0}
        else:
            out[key] = {
                "mean": float(values.mean()),
                "std": float(values.std()),
                "median": float(np.median(values)),
                "n": int(values.size),
            }
    return out


def format_summary(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain-text table ``metric  mean  std  median  n`` of :func:`summarize`'s result (``summary.json``'s
    ``metrics``); ``-`` where a column has no finite value."""
    lines = [f"{'metric':<22}{'mean':>12}{'std':>12}{'median':>12}{'n':>5}"]
    for name, stats in metrics.items():
        if not isinstance(stats, Mapping) or "mean" not in stats:
            continue
        cells = [stats.get(k) for k in ("mean", "std", "median")]
        text = "".join(f"{c:>12.4f}" if isinstance(c, (int, float)) else f"{'-':>12}" for c in cells)
        lines.append(f"{name:<22}{text}{stats.get('n', ''):>5}")
    return "\n".join(lines)
