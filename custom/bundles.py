"""Bundle discovery, and the bundles' configs made whole.

In this repository every bundle's configs say only what makes the bundle different; what all bundles share lives once
in ``bundles/_base/configs`` and is taken from there with MONAI's own macros, ``"%bundles/_base/configs/train.json#id"``
(the config item ``id`` of that file, copied in before the config is parsed). MONAI reads a macro's file path from the
working folder, so the configs of this repository run from its root (``python -m monai.bundle run --config_file
bundles/<name>/configs/train.json``), as the README says. :func:`flat_config` gives a config with its macros resolved
from wherever the process runs: ``make package`` writes these whole configs into the zip (a packaged bundle is flat and
self-contained, as the model zoo and MONAI Label expect), and ``python -m custom infer`` runs them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["BASE_CONFIGS", "bundle_names", "default_bundle_root", "flat_config", "flat_configs", "repository_root"]

BASE_CONFIGS = Path("bundles") / "_base" / "configs"  # the shared base, as the bundles' macros name it


def bundle_names(bundles: str | os.PathLike) -> list[str]:
    """The bundles of a ``bundles/`` folder: its folders with a ``configs/metadata.json``, but for the shared base
    (and any other folder whose name starts with ``_``), sorted."""
    return sorted(
        p.name
        for p in Path(bundles).iterdir()
        if not p.name.startswith("_") and (p / "configs" / "metadata.json").is_file()
    )


def default_bundle_root(name: str) -> str:
    """The bundle folder when a run does not give ``bundle_root``: ``"."`` when the current folder is the bundle
    ``name`` itself (the model zoo's way, and an unzipped ``make package`` bundle's: run from inside it), else
    ``bundles/<name>`` when run from the root of this repository, else ``"."``."""
    metadata = Path("configs") / "metadata.json"
    if metadata.is_file():
        try:
            if json.loads(metadata.read_text(encoding="utf-8")).get("name") == name:
                return "."
        except (OSError, ValueError):
            pass
    repository = Path("bundles") / name
    return str(repository) if (repository / "configs" / "metadata.json").is_file() else "."


def repository_root(config: str | os.PathLike) -> Path | None:
    """The folder that holds ``config``'s repository (the one with ``bundles/_base/configs``), or ``None`` for a
    config outside it (a packaged bundle's: flat, without macros)."""
    for folder in Path(config).resolve().parents:
        if (folder / BASE_CONFIGS).is_dir():
            return folder
    return None


@contextmanager
def _working_folder(folder: Path | None) -> Iterator[None]:
    """Run the block in ``folder`` (nothing changes for ``None``), then return to the folder the process was in."""
    if folder is None:
        yield
        return
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def flat_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config in ``path`` with its ``%file#id`` macros (and relative ``@#id`` references) resolved by MONAI's
    ``ConfigParser``, run from the repository root that the macro paths start from: a whole config, as a packaged
    bundle holds it. A config without macros comes back as it is."""
    from monai.bundle import ConfigParser

    # the file's own content (an override file's "a#b" keys stay keys: they apply when merged, see flat_configs)
    parser = ConfigParser(ConfigParser.load_config_file(str(path)))
    with _working_folder(repository_root(path)):
        parser.resolve_macro_and_relative_ids()
    config = dict(parser.get())
    config.pop(ConfigParser.meta_key, None)
    return config


def flat_configs(paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """Configs merged in order as MONAI merges a list of config files (a later file's ``a#b`` sets ``b`` of ``a``, a
    ``+a`` key extends ``a``), each made whole first (:func:`flat_config`), so that an override file may set an item of
    a block that its bundle takes from the base."""
    from monai.bundle import ConfigParser
    from monai.bundle.utils import merge_kv

    parser = ConfigParser({})
    for path in paths:
        for key, value in flat_config(path).items():
            merge_kv(parser, key, value)
    return dict(parser.get())
