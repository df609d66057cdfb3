"""Config overrides checked against the config: a misspelt ``--epoch 1`` is an error that suggests ``--epochs``, and
``--epochs 0`` or ``--precision bf17`` one that says what the setting takes, before any work is done.

MONAI's ``ConfigParser.update`` accepts any id, so an override naming no existing key adds a new, unused one and the
run goes on with the default (``--epoch 1`` trains the default 200 epochs). The rule here:

- an override is fine when its id exists in the config (``epochs``, ``network_def#features``, ``train#handlers#0``);
- or when it adds an entry to an existing mapping below the top level (``generator_losses#ssim``: a new loss term;
  ``network_def#dropout``: a new argument, which the network then checks);
- anything else is unknown: its message lists the closest existing ids (``difflib``).

The values of the settings the bundles share (:data:`VALUE_RULES`: ``epochs``, ``batch_size``, ``learning_rate``,
``precision``, ``device``, ``patch_size``, ...) are checked too (:func:`check_override_values`), so that a mistake is
one line naming the option instead of a traceback from deep inside PyTorch after the data were loaded. A value written
as a config expression (``"$..."``, ``"@..."``) is code, the user's own, and is not checked.
"""

from __future__ import annotations

import difflib
import json
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from custom.errors import InputError

__all__ = ["VALUE_RULES", "config_ids", "unknown_overrides", "check_overrides", "check_override_values", "flag"]

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


# ---------------------------------------------------------------------------------------------------- values
# a rule takes (value, the config's default) and returns what was expected, or None when the value is fine
Rule = Callable[[Any, Any], "str | None"]


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _whole(minimum: int) -> Rule:
    def rule(value: Any, default: Any) -> str | None:
        ok = _is_number(value) and float(value).is_integer() and value >= minimum
        return None if ok else f"expected a whole number >= {minimum}"

    return rule


def _positive(none_means: str | None = None) -> Rule:
    def rule(value: Any, default: Any) -> str | None:
        if value is None and none_means:
            return None
        if _is_number(value) and value > 0:
            return None
        return "expected a number > 0" + (f" (or null: {none_means})" if none_means else "")

    return rule


def _fraction(upper_open: bool = False) -> Rule:
    def rule(value: Any, default: Any) -> str | None:
        ok = _is_number(value) and 0 <= value and (value < 1 if upper_open else value <= 1)
        return None if ok else f"expected a number in [0, 1{')' if upper_open else ']'}"

    return rule


def _open_fraction(value: Any, default: Any) -> str | None:
    return None if _is_number(value) and 0 < value < 1 else "expected a number in (0, 1)"


def _non_negative(value: Any, default: Any) -> str | None:
    return None if _is_number(value) and value >= 0 else "expected a number >= 0"


def _switch(value: Any, default: Any) -> str | None:
    ok = isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false"))
    return None if ok else "expected true or false"


def _precision(value: Any, default: Any) -> str | None:
    from custom.networks import PRECISION_CHOICES

    return None if value in PRECISION_CHOICES else f"expected one of {', '.join(PRECISION_CHOICES)}"


def _device(value: Any, default: Any) -> str | None:
    import torch

    try:
        device = value if isinstance(value, torch.device) else torch.device(str(value))
    except (RuntimeError, ValueError):
        return "not a device (e.g. cpu, cuda, cuda:0)"
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return "no CUDA GPU on this machine (use --device cpu)"
        if device.index is not None and device.index >= count:
            return f"this machine has {count} CUDA GPU(s): cuda:0 to cuda:{count - 1}"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return "no MPS device on this machine (use --device cpu)"
    return None


def _sizes(value: Any, default: Any) -> str | None:
    count = len(default) if isinstance(default, (list, tuple)) else None
    ok = isinstance(value, (list, tuple)) and (count is None or len(value) == count) and len(value) > 0
    ok = ok and all(_is_number(v) and float(v).is_integer() and v > 0 for v in value)
    return None if ok else f"expected a list of {count or 'some'} whole numbers > 0, e.g. {json.dumps(default)}"


def _pair(value: Any, default: Any) -> str | None:
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value)
    return None if ok and value[0] < value[1] else "expected two numbers lo < hi, e.g. [0, 255]"


def _path(value: Any, default: Any) -> str | None:
    if value is None and default is None:
        return None
    return None if isinstance(value, (str, os.PathLike)) and str(value).strip() else "expected a file or folder name"


def _choice(*choices: str) -> Rule:
    def rule(value: Any, default: Any) -> str | None:
        return None if value in choices else f"expected one of {', '.join(choices)}"

    return rule


def _axes(value: Any, default: Any) -> str | None:
    ok = isinstance(value, (list, tuple)) and all(_is_number(v) and float(v).is_integer() and v >= 0 for v in value)
    return None if ok and len(set(value)) == len(value) else "expected a list of distinct spatial axes, e.g. [0]"


def _paths(value: Any, default: Any) -> str | None:
    ok = isinstance(value, (list, tuple)) and all(isinstance(v, (str, os.PathLike)) and str(v).strip() for v in value)
    return None if ok else 'expected a list of model files, e.g. ["b/model.pt", "c/model.pt"]'


VALUE_RULES: dict[str, Rule] = {
    **{key: _whole(1) for key in ("epochs", "batch_size", "val_interval", "samples_per_volume", "sw_batch_size",
                                  "sample_every", "checkpoint_interval", "log_interval")},
    **{key: _whole(0) for key in ("num_workers", "seed", "pool_size")},
    "minutes": _positive(none_means="no time limit"),
    "learning_rate": _positive(),
    **{key: _fraction() for key in ("cache_rate", "augment_prob", "mr_gamma_prob", "decay_start_fraction")},
    "ema_momentum": _open_fraction,  # ignite's EMAHandler takes 0 < momentum < 1
    "sw_overlap": _fraction(upper_open=True),
    **{key: _switch for key in ("amp", "resume", "allow_overlap", "background_io", "channels_last", "crop_to_mask",
                                "eight_bit", "cc_squared", "uncertainty")},
    "tta": _choice("none", "flip", "shift", "flip_shift"),
    "tta_shift": _whole(1),
    "combine": _choice("mean", "median", "bone_vote", "bone_half"),
    "tta_axes": _axes,
    "ensemble_ckpts": _paths,
    "precision": _precision,
    "device": _device,
    **{key: _sizes for key in ("patch_size", "image_size", "train_patch_size")},
    **{key: _pair for key in ("ct_window", "unit_range", "mr_percentiles")},
    **{key: _path for key in ("output_dir", "ckpt_dir", "bundle_root", "dataset_dir", "datalist", "ckpt_path",
                              "mask_file")},
}  # fmt: skip


def _rule(key: str) -> Rule | None:
    return VALUE_RULES.get(key) or (_non_negative if key.startswith("lambda_") else None)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) and value else json.dumps(value, default=str)


def check_override_values(config: Mapping[str, Any], overrides: Mapping[str, Any], where: str = "the config") -> None:
    """Raise one ``InputError`` naming every override of a shared setting (:data:`VALUE_RULES`, and ``lambda_*``
    weights) whose value that setting cannot take: ``--epochs 0: expected a whole number >= 1``. ``config`` gives the
    defaults (e.g. how many numbers ``patch_size`` has); overrides written as config expressions are not checked."""
    problems = []
    for key, value in overrides.items():
        name = str(key).lstrip("+")
        rule = _rule(name)
        if rule is None or (isinstance(value, str) and value.startswith(("$", "@", "%"))):
            continue
        _, default = _lookup(config, name.split(ID_SEP))
        problem = rule(value, default)
        if problem:
            problems.append(f"--{name} {_shown(value)}: {problem}")
    if problems:
        raise InputError(f"{'; '.join(problems)} ({where}); nothing was run")


def flag(value: Any, name: str) -> bool:
    """A config switch as a bool: ``True``/``False``, or the strings ``"true"``/``"false"`` (any case) that a
    command line such as ``--background_io false`` passes (fire keeps lowercase words as strings, and a non-empty string
    is truthy). Anything else is an :class:`InputError` naming the key."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InputError(f"{name}={value!r}: expected true or false")
