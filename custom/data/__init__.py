"""The data a run reads: the datalist format (``datalist``), the checks every run makes first (``check``), the
inputs of inference (``inputs``, ``dicom``), the datasets of unpaired training (``unpaired``), background loading
(``prefetch``) and the lidc_mask2ct masks (``lidc``). Offline dataset tools are in :mod:`custom.tools`, the procedural
demo data in :mod:`custom.demo`.

Nothing is imported here so that ``import custom.data`` stays light; import the submodules directly, e.g.
``from custom.data.datalist import load_datalist``.
"""
