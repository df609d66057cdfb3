"""Offline tools that prepare a dataset before any run: finding the cases of a dataset layout and writing the datalist
(``layouts``, ``python -m custom datalist``), and the ``lidc_mask2ct`` layout's rules (``lidc_layout``).

Nothing is imported here; import the submodules, e.g. ``from custom.tools.layouts import make_datalist``.
"""
