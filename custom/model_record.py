"""A model record: ``model.json`` beside ``model.pt``, the settings that rebuild a trained network for inference.

Training writes it (:class:`custom.handlers.BestModelSaver`)::

    {"config": {"network_def": {"_target_": "custom.networks.Generator", "backbone": "monai.networks.nets.BasicUNet",
                                "spatial_dims": 2, "features": [32, 32, 64, 128, 256, 32], ...},
                "patch_size": [256, 256], "mr_percentiles": [0.5, 99.5], "axcodes": "RAS", "unit_range": [-1.0, 1.0],
                "ct_window": [-1024, 3071], "eight_bit": false},
     "best": {"metric": "val_mae", "value": 81.2, "epoch": 40}}

and ``python -m custom infer --ckpt model.pt`` merges its ``config`` over the bundle's inference config, as does ``make
package`` into the zipped configs.

**Trust model.** A bundle's configs are code, as in every MONAI bundle: their ``$`` expressions run and their
``_target_`` names any callable. A model record is *data*: it travels with the weights from whoever shared them, and
loading weights with ``torch.load(weights_only=True)`` would protect nothing if the record beside them could run code
through MONAI's config parser. So a record is read as plain JSON and checked against a schema before it reaches a
config (:func:`check_model_record`):

- only the settings of :data:`RECORD_SETTINGS`, each of its kind (numbers, a pair of numbers, axis codes, ...);
- literal values only: no string that MONAI would evaluate or resolve (starting with ``$``, ``@`` or ``%``), no
  config keys of MONAI's (``_requires_``, ``_disabled_``, ``_mode_``, ``_desc_``: any key starting with ``_``);
- ``_target_`` only at the top of ``network_def``, naming a network class of an allowed package
  (:data:`NETWORK_PACKAGES`); the ``backbone`` of a :class:`custom.networks.Generator` (or a subclass) likewise.
  Classes are looked up among the attributes of those packages, so a record never makes Python import a module.

Anything else is one :class:`custom.errors.InputError` naming the file and the key.
"""

from __future__ import annotations

import importlib
import json
import numbers
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from custom.errors import InputError

__all__ = [
    "NETWORK_PACKAGES",
    "RECORD_SETTINGS",
    "check_model_record",
    "model_config_path",
    "network_class",
    "read_model_record",
]

# where a record's network classes may come from: MONAI's networks and this package's
NETWORK_PACKAGES = ("monai.networks.nets", "custom.networks")
GENERATOR = "custom.networks.Generator"  # its "backbone" argument (and its subclasses') names a class too
CONFIG_SYNTAX = ("$", "@", "%")  # MONAI evaluates "$...", resolves "@id" references and "%file#id" macros
AXIS_CODES = set("LRAPSI")


def model_config_path(model_path: str | os.PathLike) -> Path:
    """The JSON beside a model's weights (``models/model.pt`` -> ``models/model.json``) recording what inference
    needs to rebuild the network (its ``network_def``) and prepare the data (windows, orientation, patch size)."""
    return Path(model_path).with_suffix(".json")


class _Invalid(ValueError):
    """A value that breaks the schema; the message says what was expected (the caller adds file and key)."""


def _plain(value: Any, key: str, top: bool = False) -> None:
    """JSON literals only, recursively: no config syntax in strings, no MONAI config keys in objects."""
    if isinstance(value, str):
        if value.startswith(CONFIG_SYNTAX):
            raise _Invalid(f"{key}: a config expression or reference ({value[:60]!r}); a record holds plain values")
    elif isinstance(value, Mapping):
        for name, item in value.items():
            if not isinstance(name, str):
                raise _Invalid(f"{key}: keys must be text")
            if name.startswith("_") and not (top and name == "_target_"):
                raise _Invalid(f"{key}#{name}: not allowed in a model record (MONAI config syntax)")
            _plain(item, f"{key}#{name}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _plain(item, f"{key}#{n}")
    elif value is not None and not isinstance(value, (bool, numbers.Real)):
        raise _Invalid(f"{key}: {type(value).__name__} is not a JSON value")


def network_class(name: str) -> type:
    """The network class a record names: ``<package>.<Name>`` (or a bare ``<Name>`` of ``monai.networks.nets``, as
    MONAI's config parser and :class:`custom.networks.Generator` read it), looked up among the attributes of an
    allowed package (:data:`NETWORK_PACKAGES`) without importing anything else.

    Raises:
        ValueError: a name outside the allowed packages, or no ``torch.nn.Module`` class of that name.
    """
    import torch

    text = str(name)
    path = text if "." in text else f"{NETWORK_PACKAGES[0]}.{text}"
    package = next((p for p in NETWORK_PACKAGES if path.startswith(p + ".")), None)
    if package is None:
        raise ValueError(f"{text!r} is not an allowed network class (allowed: {', '.join(NETWORK_PACKAGES)}.*)")
    found: Any = importlib.import_module(package)
    for part in path[len(package) + 1 :].split("."):
        found = getattr(found, part, None)
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        raise ValueError(f"{text!r} is not a network class of {package}")
    return found


def _network(value: Any, key: str) -> None:
    if not isinstance(value, Mapping) or "_target_" not in value:
        raise _Invalid(f"{key}: expected a network definition (an object with a '_target_')")
    for name in ("_target_", "backbone"):
        if not isinstance(value.get(name), str):
            raise _Invalid(f"{key}#{name}: expected the name of a network class")
        try:
            found = network_class(value[name])
        except ValueError as e:
            raise _Invalid(f"{key}#{name}: {e}") from None
        if name == "_target_" and not issubclass(found, network_class(GENERATOR)):
            break  # only a Generator (or a subclass) names its backbone class


def _numbers(count: int | None, whole: bool = False, positive: bool = False) -> Callable[[Any, str], None]:
    kind = f"{'positive ' if positive else ''}{'whole numbers' if whole else 'numbers'}"
    what = f"a list of {count} {kind}" if count else f"a list of {kind}"

    def check(value: Any, key: str) -> None:
        ok = isinstance(value, list) and (count is None or len(value) == count) and len(value) > 0
        for v in value if isinstance(value, list) else ():
            ok = ok and isinstance(v, numbers.Real) and not isinstance(v, bool)
            ok = ok and (not whole or float(v).is_integer()) and (not positive or v > 0)
        if not ok:
            raise _Invalid(f"{key}: expected {what}, got {json.dumps(value)[:60]}")

    return check


def _fraction(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise _Invalid(f"{key}: expected a number in [0, 1), got {json.dumps(value)[:60]}")


def _switch(value: Any, key: str) -> None:
    if not isinstance(value, bool):
        raise _Invalid(f"{key}: expected true or false, got {json.dumps(value)[:60]}")


def _axcodes(value: Any, key: str) -> None:
    if not (isinstance(value, str) and 2 <= len(value) <= 3 and set(value) <= AXIS_CODES):
        raise _Invalid(f"{key}: expected axis codes such as 'RAS', got {json.dumps(value)[:60]}")


# the settings a record may hold (what the bundles' training configs record), each with its check
RECORD_SETTINGS: dict[str, Callable[[Any, str], None]] = {
    "network_def": _network,
    "patch_size": _numbers(None, whole=True, positive=True),
    "image_size": _numbers(None, whole=True, positive=True),
    "sw_overlap": _fraction,
    "mr_percentiles": _numbers(2),
    "axcodes": _axcodes,
    "unit_range": _numbers(2),
    "ct_window": _numbers(2),
    "mask_range": _numbers(2),
    "eight_bit": _switch,
}


def check_model_record(settings: Mapping[str, Any], where: str | os.PathLike = "model record") -> None:
    """Raise one :class:`InputError` (``<where>: <key>: <problem>``) unless ``settings`` (a record's ``config``)
    follows the schema of the module docstring."""
    if not isinstance(settings, Mapping):
        raise InputError(f"{where}: not a model record (its 'config' must be an object)")
    for key, value in settings.items():
        check = RECORD_SETTINGS.get(key)
        try:
            if check is None:
                raise _Invalid(f"{key}: not a setting a model record holds (allowed: {', '.join(RECORD_SETTINGS)})")
            _plain(value, key, top=key == "network_def")
            check(value, key)
        except _Invalid as e:
            raise InputError(f"{where}: {e}") from None


def read_model_record(model_path: str | os.PathLike) -> dict[str, Any]:
    """The checked ``config`` of the record beside ``model_path`` (``model.pt`` -> ``model.json``), or ``{}`` when
    there is none.

    Raises:
        InputError: the record is not valid JSON, not of the record's form, or breaks the schema.
    """
    path = model_config_path(model_path)
    if not Path(path).is_file():
        return {}
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: unreadable model record ({e})") from None
    if not isinstance(record, dict) or not isinstance(record.get("config", {}), dict):
        raise InputError(f"{path}: not a model record (expected a JSON object with a 'config' object)")
    extra = sorted(set(record) - {"config", "best"})
    if extra:
        raise InputError(f"{path}: {extra[0]}: not part of a model record (expected 'config' and 'best')")
    settings = dict(record.get("config", {}))
    check_model_record(settings, path)
    return settings
