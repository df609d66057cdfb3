"""Datalists: find the MR/CT cases of a dataset, split them BY SUBJECT and write a MONAI decathlon-style JSON.

Command line: ``python -m custom datalist --root DIR --layout L --out F [--val-fraction 0.2] [--test-fraction 0]
[--seed 0] [--subject-regex RE] [--manifest CSV]``.

Format written (paths absolute; :func:`load_datalist` also accepts paths relative to the JSON's folder)::

    {"training": [{"image": MR, "label": CT, "mask": body mask (optional), "case": id, "subject": id}, ...],
     "validation": [...], "test": [...], "layout": "<layout>", "eight_bit": false, "root": DIR, "seed": 0}

Layouts (``--layout``):

- ``synthrad2023``: SynthRAD2023 Task 1 folders, ``<root>/<ID>/{mr,ct,mask}.nii.gz`` (e.g. ``Task1/brain/1BA001/``),
  also one level deeper (``<root>/<region>/<ID>/...``, e.g. ``--root Task1``). Case = subject = ``<ID>``. The mask
  is optional but must then be absent for every case (MONAI transforms need the same keys in every item).
- ``synthrad2025``: the same with ``.mha`` files (SynthRAD2025 Task 1, ``Task1/HN/1HNA001/mr.mha``).
- ``paired2d``: 8-bit slice pairs ``<root>/MRI/<name>.png`` and ``<root>/CT/<name>.png`` (same name = same slice;
  ``MR/`` is accepted for ``MRI/``). Items have no ``mask`` and the JSON has ``"eight_bit": true``. Several slices
  come from one subject, so the subject of every slice must be known: from ``--manifest`` (a CSV with ``file`` and
  ``subject`` columns; ``<root>/manifest.csv`` is used when present) or from ``--subject-regex`` (its first group,
  searched in the file name, e.g. ``'^(\\d+)\\d{3}\\.png$'`` for ``2004.png`` = subject 2, slice 4).
- ``unpaired``: MR and CT volumes of DIFFERENT patients for CycleGAN, ``<root>/MR/*`` and ``<root>/CT/*`` (NIfTI,
  MHA, MHD or NRRD files; ``MRI/`` accepted for ``MR/``). Each domain is split on its own, and the JSON has six
  lists instead of three: ``training_mr``, ``validation_mr``, ``test_mr`` with items ``{"image": MR, "case",
  "subject"}`` and ``training_ct``, ``validation_ct``, ``test_ct`` with items ``{"label": CT, "case", "subject"}``.
  Each file is its own subject unless ``--subject-regex``/``--manifest`` say otherwise (keys: the case ids).

Split: the distinct subjects are sorted, shuffled with ``random.Random(seed)`` (deterministic for a seed on every
platform), then the first ``round(test_fraction * n)`` go to ``test``, the next ``round(val_fraction * n)`` to
``validation`` and the rest to ``training``. Every subject is in exactly one split, so slices or scans of one
patient never leak between training and evaluation. With few subjects: a non-zero ``val_fraction`` gives at least
one validation subject when there are >= 2 subjects, a non-zero ``test_fraction`` at least one test subject when
there are >= 3, and training always keeps at least one subject.
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import os
import random
import re
from pathlib import Path
from typing import Any, Iterable

from custom.io import ITK_SUFFIXES, NIFTI_SUFFIXES, InputError, case_name, is_png, write_text

__all__ = [
    "LAYOUTS",
    "PATH_KEYS",
    "Datalist",
    "make_datalist",
    "load_datalist",
    "read_datalist",
    "datalist_splits",
    "split_subjects",
    "write_datalist",
]

LAYOUTS = ("synthrad2023", "synthrad2025", "paired2d", "unpaired")
SPLITS = ("training", "validation", "test")
PATH_KEYS = ("image", "label", "mask")  # item keys that hold file paths
_VOLUME_EXT = {"synthrad2023": ".nii.gz", "synthrad2025": ".mha"}
_UNPAIRED_SUFFIXES = tuple(s for s in NIFTI_SUFFIXES + ITK_SUFFIXES if s != ".dcm")
_MAX_LISTED = 10


class Datalist(dict):
    """The datalist dict as written to JSON (``path``: where); ``str()`` is a one-line summary (what the CLI prints)."""

    path: str | None = None

    def __str__(self) -> str:
        counts = ", ".join(f"{len(v)} {k}" for k, v in self.items() if isinstance(v, list))
        subjects = {item.get("subject") for v in self.values() if isinstance(v, list) for item in v}
        where = f"{self.path}: " if getattr(self, "path", None) else ""
        return f"{where}{self.get('layout')} datalist with {counts} ({len(subjects)} subjects)"


def _natural_key(text: str) -> list:
    """Sort key where digit runs compare as numbers ("2" < "16")."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(text)) if t]


def _listing(names: Iterable[Any]) -> str:
    names = sorted((str(n) for n in names), key=_natural_key)
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return ", ".join(names[:_MAX_LISTED]) + more


def _check_fraction(name: str, value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"--{name}: expected a number in [0, 1), got {value!r}") from None
    if not 0.0 <= value < 1.0:
        raise InputError(f"--{name}: expected a number in [0, 1), got {value}")
    return value


def split_subjects(
    subjects: Iterable[str], val_fraction: float = 0.2, test_fraction: float = 0.0, seed: int = 0
) -> dict[str, str]:
    """Assign every distinct subject to ``"training"``, ``"validation"`` or ``"test"`` (see the module docstring)."""
    val_fraction = _check_fraction("val-fraction", val_fraction)
    test_fraction = _check_fraction("test-fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise InputError(f"--val-fraction + --test-fraction must be < 1, got {val_fraction} + {test_fraction}")
    unique = sorted({str(s) for s in subjects}, key=_natural_key)
    random.Random(int(seed)).shuffle(unique)
    n = len(unique)
    n_test = math.floor(test_fraction * n + 0.5)
    n_val = math.floor(val_fraction * n + 0.5)
    if test_fraction > 0 and n >= 3:
        n_test = max(n_test, 1)
    if val_fraction > 0 and n >= 2:
        n_val = max(n_val, 1)
    while n_test + n_val > max(n - 1, 0):  # keep one training subject; give up test before validation
        if n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    split = {s: "test" for s in unique[:n_test]}
    split.update({s: "validation" for s in unique[n_test : n_test + n_val]})
    split.update({s: "training" for s in unique[n_test + n_val :]})
    return split


# ----------------------------------------------------------------------------------------------------- subjects
def _read_manifest(path: str) -> dict[str, str]:
    """``file -> subject`` from a CSV with ``file`` and ``subject`` columns."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: manifest not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
            if "file" not in fields or "subject" not in fields:
                raise InputError(
                    f"{path}: the manifest needs 'file' and 'subject' columns (found: {_listing(fields) or 'none'})"
                )
            mapping: dict[str, str] = {}
            for line, row in enumerate(reader, start=2):
                name = (row.get(fields["file"]) or "").strip()
                subject = (row.get(fields["subject"]) or "").strip()
                if not name:
                    continue
                if not subject:
                    raise InputError(f"{path}: line {line}: no subject for {name}")
                if mapping.get(name, subject) != subject:
                    raise InputError(
                        f"{path}: line {line}: {name} listed with two subjects ({mapping[name]}, {subject})"
                    )
                mapping[name] = subject
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: unreadable manifest ({e})") from None
    return mapping


def _subject_function(subject_regex: str | None, manifest: str | None, default=None):
    """A function ``(key, fallback key) -> subject`` from a regex or a manifest, or ``default`` if neither."""
    if subject_regex is not None and manifest is not None:
        raise InputError("give either --subject-regex or --manifest, not both")
    if subject_regex is not None:
        try:
            pattern = re.compile(str(subject_regex))
        except re.error as e:
            raise InputError(f"--subject-regex {subject_regex!r}: invalid regular expression ({e})") from None
        if pattern.groups < 1:
            raise InputError(f"--subject-regex {subject_regex!r}: needs a group, e.g. '^(\\d+)_' (the subject)")

        def from_regex(key: str, other: str) -> str | None:
            m = pattern.search(key)
            return m.group(1) if m and m.group(1) else None

        return from_regex, f"--subject-regex {subject_regex!r} does not match (or has an empty group)"
    if manifest is not None:
        mapping = _read_manifest(str(manifest))

        def from_manifest(key: str, other: str) -> str | None:
            return mapping.get(key, mapping.get(other))

        return from_manifest, f"{manifest}: not listed in the manifest"
    return default, ""


def _assign_subjects(items: list[dict], keys: list[tuple[str, str]], function, problem: str) -> None:
    missing = []
    for item, (key, other) in zip(items, keys):
        subject = function(key, other)
        if subject is None:
            missing.append(key)
        item["subject"] = str(subject)
    if missing:
        raise InputError(f"{problem}: {_listing(missing)}")


# ------------------------------------------------------------------------------------------------------- layouts
def _synthrad_cases(root: Path, layout: str) -> list[dict]:
    ext = _VOLUME_EXT[layout]

    def has_volume(folder: Path) -> bool:
        return (folder / f"mr{ext}").is_file() or (folder / f"ct{ext}").is_file()

    folders = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if has_volume(child):
            folders.append(child)
        else:  # <root>/<region>/<ID>/
            folders.extend(sorted(p for p in child.iterdir() if p.is_dir() and has_volume(p)))
    if not folders:
        other = {".nii.gz": ".mha", ".mha": ".nii.gz"}[ext]
        hint = next((name for name, e in _VOLUME_EXT.items() if e == other), "")
        found_other = any(root.glob(f"*/mr{other}")) or any(root.glob(f"*/*/mr{other}"))
        tip = f" (found mr{other} files: use --layout {hint})" if found_other else ""
        raise InputError(f"{root}: no cases found for layout {layout}: expected <root>/<ID>/mr{ext} and ct{ext}{tip}")
    no_ct = [f for f in folders if not (f / f"ct{ext}").is_file()]
    no_mr = [f for f in folders if not (f / f"mr{ext}").is_file()]
    if no_ct:
        raise InputError(f"{root}: mr{ext} without ct{ext} in {len(no_ct)} case(s): {_listing(no_ct)}")
    if no_mr:
        raise InputError(f"{root}: ct{ext} without mr{ext} in {len(no_mr)} case(s): {_listing(no_mr)}")
    with_mask = [f for f in folders if (f / f"mask{ext}").is_file()]
    if with_mask and len(with_mask) != len(folders):
        no_mask = sorted(set(folders) - set(with_mask))
        raise InputError(
            f"{root}: mask{ext} is missing in {len(no_mask)} of {len(folders)} cases ({_listing(no_mask)}); "
            "every case needs a mask, or none"
        )
    names = [f.name for f in folders]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        clash = [f for f in folders if f.name in duplicates]
        raise InputError(f"{root}: the same case id in several folders: {_listing(clash)}")
    items = []
    for folder in folders:
        item = {"image": os.path.abspath(folder / f"mr{ext}"), "label": os.path.abspath(folder / f"ct{ext}")}
        if with_mask:
            item["mask"] = os.path.abspath(folder / f"mask{ext}")
        item["case"] = folder.name
        items.append(item)
    return items


def _find_dir(root: Path, names: tuple[str, ...], layout: str) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise InputError(
        f"{root}: no {names[0]}/ folder for layout {layout} (expected {' or '.join(n + '/' for n in names)})"
    )


def _files(folder: Path, accept) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".") and accept(p)}


def _paired2d_cases(root: Path) -> list[dict]:
    mr_dir, ct_dir = _find_dir(root, ("MRI", "MR"), "paired2d"), _find_dir(root, ("CT",), "paired2d")
    mr, ct = _files(mr_dir, is_png), _files(ct_dir, is_png)
    if not mr:
        raise InputError(f"{mr_dir}: no .png slices found")
    if set(mr) - set(ct):
        missing = set(mr) - set(ct)
        raise InputError(f"{ct_dir}: {len(missing)} MR slice(s) without a CT of the same name: {_listing(missing)}")
    if set(ct) - set(mr):
        missing = set(ct) - set(mr)
        raise InputError(f"{mr_dir}: {len(missing)} CT slice(s) without an MR of the same name: {_listing(missing)}")
    return [
        {"image": os.path.abspath(mr[name]), "label": os.path.abspath(ct[name]), "case": case_name(name), "file": name}
        for name in mr
    ]


def _unpaired_cases(root: Path) -> tuple[list[dict], list[dict]]:
    def volume(p: Path) -> bool:
        return str(p).lower().endswith(_UNPAIRED_SUFFIXES)

    domains = []
    for names, key in ((("MR", "MRI"), "image"), (("CT",), "label")):
        folder = _find_dir(root, names, "unpaired")
        files = _files(folder, volume)
        if not files:
            raise InputError(f"{folder}: no volumes found (expected .nii.gz, .nii, .mha, .mhd or .nrrd files)")
        cases = [case_name(name) for name in files]
        duplicates = {c for c in cases if cases.count(c) > 1}
        if duplicates:
            raise InputError(f"{folder}: the same case name with several suffixes: {_listing(duplicates)}")
        domains.append([{key: os.path.abspath(p), "case": case_name(name)} for name, p in files.items()])
    return domains[0], domains[1]


# --------------------------------------------------------------------------------------------------------- main
def _split_items(items: list[dict], split: dict[str, str], suffix: str = "") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {name + suffix: [] for name in SPLITS}
    for item in sorted(items, key=lambda it: (_natural_key(it["subject"]), _natural_key(it["case"]))):
        out[split[item["subject"]] + suffix].append(item)
    return out


def write_datalist(data: dict, out: str | os.PathLike) -> str:
    """Write ``data`` as indented JSON, atomically (temporary file + rename)."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"{out}: is a folder, expected a .json file name")
    return write_text(json.dumps(data, indent=2) + "\n", out)


def make_datalist(
    root: str,
    layout: str,
    out: str,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    subject_regex: str | None = None,
    manifest: str | None = None,
) -> dict:
    """Find the cases under ``root`` for ``layout``, split them by subject and write the datalist JSON to ``out``.

    Args:
        root: dataset folder.
        layout: ``synthrad2023``, ``synthrad2025``, ``paired2d`` or ``unpaired`` (see the module docstring).
        out: JSON file to write (atomically).
        val_fraction: fraction of the subjects for validation, in [0, 1).
        test_fraction: fraction of the subjects for test, in [0, 1).
        seed: seed of the subject shuffle (same seed and same files = same datalist).
        subject_regex: regular expression whose first group is the subject, searched in the file name (paired2d) or
            case id (other layouts).
        manifest: CSV with ``file`` and ``subject`` columns (paired2d default: ``<root>/manifest.csv`` if present).

    Returns:
        The datalist dict written (a :class:`Datalist`, whose ``str()`` is a short summary).

    Raises:
        InputError: unknown layout, missing root, no cases, MR without CT (or CT without MR), slices without a
            subject, bad fractions.
    """
    layout = str(layout).strip().lower()
    if layout not in LAYOUTS:
        raise InputError(f"--layout {layout!r}: unknown layout (choose one of {', '.join(LAYOUTS)})")
    root_path = Path(os.path.expanduser(str(root)))
    if not root_path.is_dir():
        raise InputError(f"{root}: dataset folder not found")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise InputError(f"--seed: expected an integer, got {seed!r}")
    split_subjects([], val_fraction, test_fraction, seed)  # check the fractions before scanning a big tree

    data: dict[str, Any] = {}
    if layout in _VOLUME_EXT:
        items = _synthrad_cases(root_path, layout)
        function, problem = _subject_function(subject_regex, manifest, default=lambda key, other: key)
        _assign_subjects(items, [(it["case"], it["case"]) for it in items], function, problem)
        data.update(
            _split_items(items, split_subjects([it["subject"] for it in items], val_fraction, test_fraction, seed))
        )
    elif layout == "paired2d":
        items = _paired2d_cases(root_path)
        if subject_regex is None and manifest is None and (root_path / "manifest.csv").is_file():
            manifest = str(root_path / "manifest.csv")
        function, problem = _subject_function(subject_regex, manifest)
        if function is None:
            raise InputError(
                f"{root}: the subject of each slice is unknown: add {root_path / 'manifest.csv'} "
                "(columns file,subject) or give --manifest or --subject-regex "
                "(slices must be split by subject, never by slice)"
            )
        _assign_subjects(items, [(it["file"], it["case"]) for it in items], function, problem)
        for item in items:
            del item["file"]
        data.update(
            _split_items(items, split_subjects([it["subject"] for it in items], val_fraction, test_fraction, seed))
        )
    else:
        mr_items, ct_items = _unpaired_cases(root_path)
        for items in (mr_items, ct_items):
            function, problem = _subject_function(subject_regex, manifest, default=lambda key, other: key)
            _assign_subjects(items, [(it["case"], it["case"]) for it in items], function, problem)
        for items, suffix in ((mr_items, "_mr"), (ct_items, "_ct")):
            split = split_subjects([it["subject"] for it in items], val_fraction, test_fraction, seed)
            data.update(_split_items(items, split, suffix))
    data.update(
        {
            "layout": layout,
            "eight_bit": layout == "paired2d",
            "root": os.path.abspath(root_path),
            "seed": int(seed),
            "val_fraction": float(val_fraction),
            "test_fraction": float(test_fraction),
        }
    )
    write_datalist(data, out)
    result = Datalist(data)
    result.path = str(out)
    return result


# -------------------------------------------------------------------------------------------------------- reading
def datalist_splits(data: dict) -> list[str]:
    """Names of the lists of items in a datalist dict (``training``, ``validation``, ... ``training_mr``, ...)."""
    return [k for k, v in data.items() if isinstance(v, list) and all(isinstance(i, dict) for i in v)]


def read_datalist(path: str | os.PathLike) -> dict:
    """Read a datalist JSON; ``image``/``label``/``mask`` paths are made absolute (relative = to the JSON's folder).

    Raises:
        InputError: the file is missing, is not JSON, or is not a datalist (a JSON object of item lists).
    """
    path = Path(os.path.expanduser(str(path)))
    if not path.is_file():
        raise InputError(f"{path}: datalist not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: unreadable datalist ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a datalist (expected a JSON object with 'training', 'validation' lists)")
    base = path.resolve().parent
    for split in datalist_splits(data):
        items = []
        for n, item in enumerate(data[split]):
            item = dict(item)
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


def load_datalist(path: str | os.PathLike, split: str = "training") -> list[dict]:
    """The items of one split of a datalist JSON, with absolute paths.

    Raises:
        InputError: the file is missing or invalid, or has no list named ``split``.
    """
    data = read_datalist(path)
    available = datalist_splits(data)
    if split not in available:
        raise InputError(f"{path}: no split {split!r} (available: {', '.join(available) or 'none'})")
    return data[split]
