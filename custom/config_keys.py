"""Config overrides checked against the config: a misspelt ``--epoch 1`` is an error that suggests ``--epochs``.

MONAI's ``ConfigParser.update`` accepts any id, so an override naming no existing key adds a new, unused one and the
run goes on with the default (``--epoch 1`` trains the default 200 epochs). The rule here:

- an override is fine when its id exists in the config (``epochs``, ``network_def#features``, ``train#handlers#0``);
- or when it adds an entry to an existing mapping below the top level (``generator_losses#ssim``: a new loss term;
  ``network_def#dropout``: a new argument, which the network then checks);
- anything else is unknown: its message lists the closest existing ids (``difflib``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from custom.io import InputError

__all__ = ["config_ids", "unknown_overrides", "check_overrides"]

ID_SEP = "#"


def config_ids(config: Any, prefix: str = "") -> set[str]:
    """Every id of a (nested) config: ``a``, ``a#b``, ``a#0``, ..."""
    ids: set[str] = set()
    items = config.items() if isinstance(config, Mapping) else enumerate(config) if isinstance(config, list) else ()
    for key, value in items:
        name = f"{prefix}{ID_SEP}{key}" if prefix else str(key)
        ids.add(name)
        ids |= config_ids(value, name)
    return ids


def _lookup(config: Any, parts: list[str]) -> tuple[bool, Any]:
    node = config
    for part in parts:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def unknown_overrides(config: Mapping[str, Any], keys: Iterable[str]) -> dict[str, list[str]]:
    """``{override: closest existing ids}`` for the overrides that name no key of ``config`` (see the module
    docstring); a leading ``+`` (MONAI's merge) is ignored."""
    ids = sorted(config_ids(config))
    unknown: dict[str, list[str]] = {}
    for key in keys:
        parts = str(key).lstrip("+").split(ID_SEP)
        exists, _ = _lookup(config, parts)
        parent_exists, parent = _lookup(config, parts[:-1])
        if exists or (len(parts) > 1 and parent_exists and isinstance(parent, Mapping)):
            continue
        unknown[str(key)] = difflib.get_close_matches(str(key).lstrip("+"), ids, n=3, cutoff=0.6)
    return unknown


def check_overrides(config: Mapping[str, Any], keys: Iterable[str], where: str = "the config") -> None:
    """Raise ``InputError`` naming every override of ``keys`` that is not a key of ``config``, with suggestions."""
    unknown = unknown_overrides(config, keys)
    if not unknown:
        return
    parts = []
    for key, close in unknown.items():
        hint = f" (did you mean {' or '.join('--' + c for c in close)}?)" if close else ""
        parts.append(f"--{key}{hint}")
    raise InputError(f"{', '.join(parts)}: not a key of {where}; nothing was run")
