"""Dose-related evaluation of an sCT against its CT. So far the parts that need no dose engine: the CT calibration
(HU to relative electron density and stopping power, :mod:`custom.dose.conversion`) and the proton range surrogate
(water-equivalent path length along a beam, :mod:`custom.dose.wepl`)."""

from custom.dose.conversion import GENERIC_TABLE, DensityTable
from custom.dose.wepl import range_difference, wepl_map

__all__ = ["GENERIC_TABLE", "DensityTable", "range_difference", "wepl_map"]
