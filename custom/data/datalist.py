"""The datalist format: a MONAI decathlon-style JSON of MR/CT cases split by subject, and how to read and write it.

Written by :func:`custom.tools.layouts.make_datalist` (``python -m custom datalist``, which finds the cases of a
dataset layout and splits them); read by training, inference, evaluation and ``check`` through this module::

    {"training": [{"image": MR, "label": CT, "mask": body mask (optional), "case": id, "subject": id}, ...],
     "validation": [...], "test": [...],
     "layout": "<layout>", "eight_bit": false, "root": DIR, "seed": 0, "val_fraction": 0.2, "test_fraction": 0.0}

- Lists of items: ``training``, ``validation``, ``test`` (see :data:`SPLITS`); an unpaired (CycleGAN) datalist has
  ``training_mr``, ``validation_mr``, ``test_mr`` with ``{"image", "case", "subject"}`` items and ``training_ct``,
  ``validation_ct``, ``test_ct`` with ``{"label", "case", "subject"}`` items instead. Every list of JSON objects is a
  split (:func:`datalist_splits`); the other keys are metadata.
- Paths (:data:`PATH_KEYS`: ``image``, ``label``, ``mask``): written absolute; a relative path is relative to the
  JSON's folder (not to the working folder), so a dataset and its datalist can be moved together.
  :func:`read_datalist` makes them absolute. ``mask`` is optional but then absent from every item of a datalist.
- ``case``: the case id, which names the case's outputs (``<case>_sct.nii.gz``): one plain file name
  (:func:`case_id_problem`), checked by :func:`read_datalist`. The items are data: a run hands them to its config as one
  opaque value (:func:`custom.inference.as_config_data`), never as strings for MONAI to evaluate.
- ``eight_bit``: true for 8-bit grey levels (values 0-255: PNG slices, or volumes stacked from them) instead of CT
  in Hounsfield units; intensity transforms, checks and metrics read it.
- How it was split: ``layout``, ``root``, ``seed``, and for each of validation/test either its fraction
  (``val_fraction``, ``test_fraction``) or the subjects named for it (``val_subjects``, ``test_subjects``: strings).

Inference and evaluation use :func:`evaluation_split`: ``test``, or ``validation`` when ``test`` is empty.
:func:`read_datalist` and :func:`load_datalist` accept a path or an already read dict, so a run reads the JSON once
and passes the dict around.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from custom.errors import InputError
from custom.outputs import write_text

__all__ = [
    "SPLITS",
    "UNPAIRED_SPLITS",
    "PATH_KEYS",
    "case_id",
    "case_id_problem",
    "repeated_cases",
    "Datalist",
    "datalist_splits",
    "evaluation_split",
    "load_datalist",
    "read_datalist",
    "write_datalist",
]

SPLITS = ("training", "validation", "test")
UNPAIRED_SPLITS = tuple(f"{split}_{domain}" for split in SPLITS for domain in ("mr", "ct"))
PATH_KEYS = ("image", "label", "mask")  # item keys that hold file paths


class Datalist(dict):
    """The datalist dict as written to JSON (``path``: where); ``str()`` is a one-line summary (what the CLI prints)."""

    path: str | None = None

    def __str__(self) -> str:
        splits = datalist_splits(self)
        counts = ", ".join(f"{len(self[k])} {k}" for k in splits)
        subjects = {item.get("subject") for k in splits for item in self[k]}
        where = f"{self.path}: " if getattr(self, "path", None) else ""
        return f"{where}{self.get('layout')} datalist with {counts} ({len(subjects)} subjects)"


def _where(data: dict) -> str:
    """What to call ``data`` in a message: its file when it was read from one."""
    return getattr(data, "path", None) or "datalist"


def datalist_splits(data: dict) -> list[str]:
    """Names of the lists of items in a datalist dict (``training``, ``validation``, ... ``training_mr``, ...)."""
    return [k for k, v in data.items() if isinstance(v, list) and all(isinstance(i, dict) for i in v)]


def read_datalist(path_or_dict: str | os.PathLike | dict) -> dict:
    """Read a datalist JSON; ``image``/``label``/``mask`` paths are made absolute (relative = to the JSON's folder).

    Args:
        path_or_dict: the JSON file, or a datalist already read (returned as is, nothing is read).

    Returns:
        A :class:`Datalist` whose ``path`` is the file (so that messages can name it), or the dict given.

    Raises:
        InputError: the file is missing, is not JSON, or is not a datalist (a JSON object of item lists: a split such
            as ``training`` that is not a list of objects, e.g. a list of file names, is an error), or a case id is
            not a plain file name.
    """
    if isinstance(path_or_dict, dict):
        return path_or_dict
    path = Path(os.path.expanduser(str(path_or_dict)))
    if not path.is_file():
        raise InputError(f"{path}: datalist not found")
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: unreadable datalist ({e})") from None
    if not isinstance(content, dict):
        raise InputError(f"{path}: not a datalist (expected a JSON object with 'training', 'validation' lists)")
    for split in SPLITS + UNPAIRED_SPLITS:
        value = content.get(split, [])
        if not isinstance(value, list):
            raise InputError(f"{path}: {split!r} must be a list of cases, got {type(value).__name__}")
        for n, item in enumerate(value):
            if not isinstance(item, dict):
                raise InputError(
                    f"{path}: item {n} of {split!r} is a {type(item).__name__} ({str(item)[:40]!r}), expected an "
                    'object such as {"image": "mr.nii.gz", "label": "ct.nii.gz"}'
                )
    data = Datalist(content)
    data.path = str(path)
    base = path.resolve().parent
    for split in datalist_splits(data):
        items = []
        for n, item in enumerate(data[split]):
            item = dict(item)
            if "case" in item:
                problem = case_id_problem(item["case"])
                if problem:
                    raise InputError(f"{path}: item {n} of {split!r}: {problem}")
            for key in PATH_KEYS:
                if key not in item:
                    continue
                value = item[key]
                if not isinstance(value, str) or not value:
                    raise InputError(f"{path}: item {n} of {split!r}: {key!r} must be a file path, got {value!r}")
                item[key] = os.path.normpath(base / os.path.expanduser(value))  # an absolute value replaces base
            items.append(item)
        data[split] = items
    return data


def case_id_problem(case: object) -> str | None:
    """Why ``case`` cannot be a case id, or ``None``. A case id names files in an output folder (``<case>_sct.nii.gz``,
    ``figures/<case>.png``), so it is one plain file name: text or a number, not empty, no ``/`` or ``\\``, not ``.``
    or ``..``."""
    if isinstance(case, bool) or not isinstance(case, (str, int)):
        return f"case {case!r} is not a name (expected text or a number)"
    text = str(case)
    if not text.strip() or "/" in text or "\\" in text or "\0" in text or text in (".", ".."):
        return f"case {text!r} would leave the output folder (a case id is a file name: no '/', '\\', '..', not empty)"
    return None


def case_id(item: dict) -> str:
    """What names the case of a datalist item: its ``case``, else its first file (``image``, ``label``, ``mask``)."""
    for key in ("case",) + PATH_KEYS:
        if item.get(key):
            return str(item[key])
    return ""


def repeated_cases(items: list[dict]) -> list[str]:
    """The case ids (:func:`case_id`) listed more than once in ``items``, each once, in order."""
    counts = Counter(case_id(item) for item in items)
    return [case for case, n in counts.items() if n > 1]


def load_datalist(path_or_dict: str | os.PathLike | dict, split: str = "training") -> list[dict]:
    """The items of one split of a datalist (a JSON file or a dict already read), with absolute paths.

    Raises:
        InputError: the file is missing or invalid, or has no list named ``split``.
    """
    data = read_datalist(path_or_dict)
    available = datalist_splits(data)
    if split not in available:
        raise InputError(f"{_where(data)}: no split {split!r} (available: {', '.join(available) or 'none'})")
    return data[split]


def evaluation_split(data: dict, split: str | None = None) -> str:
    """The split to infer/evaluate on: ``split`` if given; else ``"test"`` when it has items, else ``"validation"``.

    The one place that chooses the default, so inference and evaluation score the same cases.

    Raises:
        InputError: the chosen split is missing or empty (naming the datalist's file when ``data`` has a ``path``).
    """
    if split is None:
        split = "test" if data.get("test") else "validation"
    split = str(split)
    if split not in datalist_splits(data) or not data[split]:
        filled = [s for s in datalist_splits(data) if data[s]]
        raise InputError(
            f"{_where(data)}: the {split!r} list is missing or empty (lists with cases: {', '.join(filled) or 'none'})"
        )
    return split


def write_datalist(data: dict, out: str | os.PathLike) -> str:
    """Write ``data`` as indented JSON, atomically (temporary file + rename)."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"{out}: is a folder, expected a .json file name")
    return write_text(json.dumps(data, indent=2) + "\n", out)
