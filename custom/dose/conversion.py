"""CT numbers to the densities dose engines need: relative electron density (photons) and relative stopping power
(protons), by piecewise-linear interpolation in a calibration table.

    RED(HU) = interp(HU; table.hu, table.red),   SPR(HU) = interp(HU; table.hu, table.spr)

both relative to water, clipped to the table's end values outside its HU range. A calibration belongs to a CT
scanner and protocol (Schneider, Pedroni & Lomax, "The calibration of CT Hounsfield units for radiotherapy treatment
planning", Phys. Med. Biol. 41, 1996; Schneider, Bortfeld & Schlegel, Phys. Med. Biol. 45, 2000, the stoichiometric
method): :data:`GENERIC_TABLE` is a generic curve in the range of such calibrations (air, adipose, water, soft tissue,
cortical bone), good enough to compare a CT with its sCT on the same curve (the errors of interest are the sCT's, not
the curve's) and no substitute for a clinic's own. A CSV file replaces it: three columns ``hu,red,spr`` with a header
line, HU strictly increasing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from custom.errors import InputError

__all__ = ["GENERIC_TABLE", "DensityTable"]


@dataclass(frozen=True)
class DensityTable:
    """A CT calibration: HU (strictly increasing) to relative electron density and relative stopping power.

    Raises:
        InputError: fewer than two points, columns of different lengths, HU not strictly increasing, or a negative or
            non-finite density.
    """

    hu: tuple[float, ...]
    red: tuple[float, ...]
    spr: tuple[float, ...]
    source: str = "generic"

    def __post_init__(self) -> None:
        hu, red, spr = (np.asarray(c, dtype=float) for c in (self.hu, self.red, self.spr))
        where = f"density table ({self.source})"
        if not (len(hu) == len(red) == len(spr)) or len(hu) < 2:
            raise InputError(f"{where}: needs at least two rows of hu, red, spr of equal length")
        if not np.all(np.isfinite(np.concatenate([hu, red, spr]))):
            raise InputError(f"{where}: a value is not a finite number")
        if np.any(np.diff(hu) <= 0):
            raise InputError(f"{where}: HU must be strictly increasing, got {list(hu)}")
        if np.any(red < 0) or np.any(spr < 0):
            raise InputError(f"{where}: densities must not be negative")

    @classmethod
    def from_csv(cls, path: str | Path) -> DensityTable:
        """Read ``hu,red,spr`` rows (a header line first) from a CSV file."""
        path = Path(path)
        try:
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as e:
            raise InputError(f"{path}: cannot read the density table ({e.strerror or e})") from None
        try:
            columns = {key: tuple(float(row[key]) for row in rows) for key in ("hu", "red", "spr")}
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: expected a header 'hu,red,spr' and numbers in every row") from None
        return cls(**columns, source=str(path))

    def relative_electron_density(self, hu: np.ndarray) -> np.ndarray:
        """Electron density relative to water of each CT number (float32)."""
        return np.interp(np.asarray(hu, dtype=float), self.hu, self.red).astype(np.float32)

    def stopping_power_ratio(self, hu: np.ndarray) -> np.ndarray:
        """Proton stopping power relative to water of each CT number (float32)."""
        return np.interp(np.asarray(hu, dtype=float), self.hu, self.spr).astype(np.float32)


#: Generic calibration points (HU, RED, SPR): air, lung, adipose, water, soft tissue, cancellous and cortical bone,
#: dense bone. Illustrative values in the range of stoichiometric calibrations; replace with your scanner's.
GENERIC_TABLE = DensityTable(
    hu=(-1000.0, -800.0, -100.0, 0.0, 60.0, 300.0, 1500.0, 3000.0),
    red=(0.001, 0.20, 0.95, 1.00, 1.05, 1.18, 1.85, 2.70),
    spr=(0.001, 0.20, 0.97, 1.00, 1.04, 1.15, 1.75, 2.50),
)
