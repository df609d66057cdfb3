"""Data preparation and validation: datalists (``datalist``), DICOM conversion (``dicom``), dataset checks (``check``),
the synthetic demo data (``demo``) and unpaired (CycleGAN) training data (``unpaired``).

Nothing is imported here so that ``import custom.data`` stays light; import the submodules directly, e.g.
``from custom.data.datalist import load_datalist``.
"""
