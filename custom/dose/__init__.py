"""Dose evaluation of an sCT against its CT: the CT calibration (HU to relative electron density and stopping power,
:mod:`custom.dose.conversion`), the proton range surrogate (water-equivalent path length along a beam,
:mod:`custom.dose.wepl`, no dose engine), a photon / proton plan made on the CT and recomputed on the sCT
(:mod:`custom.dose.engine`, the optional extra ``dose``), and the comparison (:mod:`custom.dose.metrics`,
:mod:`custom.dose.gamma`); ``python -m custom dose-eval`` (:mod:`custom.dose.evaluate`) runs them."""

from custom.dose.conversion import GENERIC_TABLE, DensityTable
from custom.dose.gamma import gamma_index, gamma_pass_rate
from custom.dose.metrics import dose_differences, dose_volume_point
from custom.dose.wepl import range_difference, wepl_map

__all__ = [
    "GENERIC_TABLE",
    "DensityTable",
    "dose_differences",
    "dose_volume_point",
    "gamma_index",
    "gamma_pass_rate",
    "range_difference",
    "wepl_map",
]
