"""Procedural demo data (not patient data), made by ``python -m custom demo-data`` and ``demo-lung-data`` so that the
bundles run end to end on a fresh machine: head MR/CT volumes (``heads``) and chest CT slices with lung masks
(``lungs``).

Nothing is imported here; import the submodules, e.g. ``from custom.demo.heads import make_demo_data``.
"""
