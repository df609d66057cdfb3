"""The dose differences a physicist checks between a plan's dose on the CT (reference) and on the sCT, as in the
SynthRAD challenges' dosimetric evaluation (Thummerer et al., "SynthRAD2023 Grand Challenge dataset", Med. Phys. 50,
2023; Huijben et al., "Generating synthetic computed tomography for radiotherapy: SynthRAD2023 challenge report",
Med. Image Anal. 97, 2024):

- the mean absolute dose difference in the body and in the target, in Gy and in % of the prescription;
- dose-volume points of the target: D_x = the dose that x % of the target receives at least (D98: near-minimum,
  D50: median, D2: near-maximum), on the CT and the sCT and their difference (sCT - CT);
- global gamma pass rates (:mod:`custom.dose.gamma`) at 2 %/2 mm and 3 %/3 mm with a 10 % low-dose cut-off, on the
  dose grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from custom.dose.gamma import gamma_pass_rate

__all__ = ["GAMMA_CRITERIA", "dose_differences", "dose_volume_point"]

#: (dose %, distance mm) of the reported gamma pass rates
GAMMA_CRITERIA = ((2.0, 2.0), (3.0, 3.0))


def dose_volume_point(dose: np.ndarray, region: np.ndarray, percent_volume: float) -> float:
    """D_x: the dose that ``percent_volume`` % of ``region`` receives at least (the (100 - x)th percentile)."""
    return float(np.percentile(dose[region], 100.0 - percent_volume))


def dose_differences(
    ct_dose: np.ndarray,
    sct_dose: np.ndarray,
    body: np.ndarray,
    target: np.ndarray,
    prescription_gy: float,
    ct_dose_grid: np.ndarray,
    sct_dose_grid: np.ndarray,
    grid_spacing: Sequence[float],
) -> dict:
    """Dose MAE in the body and the target, the target's D98 / D50 / D2 and the gamma pass rates of ``sct_dose``
    against ``ct_dose`` (Gy, on the CT's grid; the gamma on the dose grid, ``grid_spacing`` mm)."""

    def percent(gy: float) -> float:
        return 100.0 * gy / prescription_gy

    report: dict = {}
    for name, region in (("body", body), ("target", target)):
        mae = float(np.mean(np.abs(sct_dose[region] - ct_dose[region])))
        report[f"mae_{name}_gy"], report[f"mae_{name}_percent"] = mae, percent(mae)
    for x in (98, 50, 2):
        ct_value, sct_value = (dose_volume_point(d, target, x) for d in (ct_dose, sct_dose))
        report[f"D{x}"] = {
            "ct_gy": ct_value,
            "sct_gy": sct_value,
            "difference_gy": sct_value - ct_value,
            "difference_percent": percent(sct_value - ct_value),
        }
    report["gamma_pass_percent"] = {
        f"{dose:g}%/{distance:g}mm": gamma_pass_rate(ct_dose_grid, sct_dose_grid, grid_spacing, dose, distance)
        for dose, distance in GAMMA_CRITERIA
    }
    return report
