"""Dataset layouts: find the MR/CT cases of a dataset, split them BY SUBJECT and write the datalist JSON.

Command line: ``python -m custom datalist --root DIR --layout L --out F [--val-fraction 0.2] [--test-fraction 0]
[--seed 0] [--subject-regex RE] [--manifest CSV] [--val-subjects IDS] [--test-subjects IDS]``; the JSON written is
described in :mod:`custom.data.datalist`.

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
- ``stacked2d``: 8-bit slice pairs stacked into volumes by ``python -m custom stack-slices``
  (:mod:`custom.tools.stack_slices`): the ``synthrad2023`` folders plus ``<root>/stack.json``, which gives each case's
  subject (the slices of one subject may make several cases); the JSON has ``"eight_bit": true``.
- ``unpaired``: MR and CT volumes of DIFFERENT patients for CycleGAN, ``<root>/MR/*`` and ``<root>/CT/*`` (NIfTI,
  MHA, MHD or NRRD files; ``MRI/`` accepted for ``MR/``). Each domain is split on its own, and the JSON has six
  lists instead of three: ``training_mr``, ``validation_mr``, ``test_mr`` with items ``{"image": MR, "case",
  "subject"}`` and ``training_ct``, ``validation_ct``, ``test_ct`` with items ``{"label": CT, "case", "subject"}``.
  Each file is its own subject unless ``--subject-regex``/``--manifest`` say otherwise (keys: the case ids).
- ``lidc_mask2ct``: 8-bit lung CT slices with their masks (:mod:`custom.data.lidc`),
  ``<root>/{train,test}/{with_nodules,clean}/<ID>_slice_<k>.png`` with ``<ID>_combined_mask_<k>.npy``
  (with_nodules) or ``<ID>_lung_mask_<k>.npy`` (clean). Items ``{"image": mask, "label": slice, "case", "subject":
  <ID>, "group"}``, no ``mask``; ``"eight_bit": true``. ``test/`` is the test split (its patients are the test
  subjects: ``--test-fraction`` and ``--test-subjects`` do not apply); validation patients are drawn from ``train/``
  with ``--val-fraction`` or named.

Split: the distinct subjects are sorted, shuffled with ``random.Random(seed)`` (deterministic for a seed on every
platform), then the first ``round(test_fraction * n)`` go to ``test``, the next ``round(val_fraction * n)`` to
``validation`` and the rest to ``training``. Every subject is in exactly one split, so slices or scans of one
patient never leak between training and evaluation. With few subjects: a non-zero ``val_fraction`` gives at least
one validation subject when there are >= 2 subjects, a non-zero ``test_fraction`` at least one test subject when
there are >= 3, and training always keeps at least one subject.

Named subjects: ``val_subjects``/``test_subjects`` (``"20,28"``, ``"20 28"``, ``20`` or a list) put exactly those
subjects in that split, and its fraction is ignored. A split that is not named is still drawn with the seed, from
the subjects that are not named, with its fraction of ALL ``n`` subjects (so naming the test subjects does not change
how many validation subjects there are). Unpaired: each name applies to the domain(s) that have that subject (a
domain without any of the names gets no subject in that split). A name that is in no domain, a subject named for
both splits, or no subject left for training is an :class:`~custom.errors.InputError`.
"""

from __future__ import annotations

import csv
import math
import numbers
import os
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Union

from custom.data.datalist import SPLITS, Datalist, write_datalist
from custom.errors import InputError
from custom.images import ITK_SUFFIXES, NIFTI_SUFFIXES, case_name, is_png
from custom.outputs import check_output_path
from custom.tools.lidc_layout import LIDC_LAYOUT, lidc_items
from custom.tools.stack_slices import read_stack

__all__ = ["LAYOUTS", "SubjectNames", "make_datalist", "split_subjects"]

LAYOUTS = ("synthrad2023", "synthrad2025", "paired2d", "stacked2d", "unpaired", LIDC_LAYOUT)
_VOLUME_EXT = {"synthrad2023": ".nii.gz", "synthrad2025": ".mha"}
_UNPAIRED_SUFFIXES = tuple(s for s in NIFTI_SUFFIXES + ITK_SUFFIXES if s != ".dcm")
_MAX_LISTED = 10

# what ``--val-subjects``/``--test-subjects`` accept: "20,28", "20 28", 20 (fire's int) or a sequence (fire's tuple)
SubjectNames = Union[str, int, Sequence[Union[str, int]], None]


def _natural_key(text: str) -> list:
    """Sort key where digit runs compare as numbers ("2" < "16")."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(text)) if t]


def _listing(names: Iterable[Any]) -> str:
    names = sorted((str(n) for n in names), key=_natural_key)
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return ", ".join(names[:_MAX_LISTED]) + more


# ---------------------------------------------------------------------------------------------------------- split
class _SplitOptions(NamedTuple):
    """Checked split options; the fraction of a split whose subjects are named is 0 (it is not used)."""

    val_fraction: float
    test_fraction: float
    val_subjects: tuple[str, ...] | None
    test_subjects: tuple[str, ...] | None

    def within(self, subjects: Iterable[str]) -> _SplitOptions:
        """The same options with only the names in ``subjects`` (unpaired: the subjects of one domain)."""
        subjects = set(subjects)

        def keep(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
            return None if names is None else tuple(n for n in names if n in subjects)

        return self._replace(val_subjects=keep(self.val_subjects), test_subjects=keep(self.test_subjects))


def _check_fraction(name: str, value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"--{name}: expected a number in [0, 1), got {value!r}") from None
    if not 0.0 <= value < 1.0:
        raise InputError(f"--{name}: expected a number in [0, 1), got {value}")
    return value


def _subject_names(flag: str, value: SubjectNames) -> tuple[str, ...] | None:
    """The distinct subject ids of ``value`` (naturally sorted), ``None`` when not given."""
    if value is None:
        return None
    parts = [value] if isinstance(value, (str, numbers.Integral)) else value
    if not isinstance(parts, Iterable) or isinstance(parts, (bool, dict)):
        parts = [value]  # rejected below with the value in the message
    names: set[str] = set()
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, (str, numbers.Integral)):
            raise InputError(f"{flag}: expected subject ids such as 20,28 (quote ids like '1.5'), got {value!r}")
        names.update(n for n in re.split(r"[\s,]+", str(part)) if n)
    if not names:
        raise InputError(f"{flag}: no subject id given (expected ids such as 20,28)")
    return tuple(sorted(names, key=_natural_key))


def _split_options(
    val_fraction: Any, test_fraction: Any, val_subjects: SubjectNames, test_subjects: SubjectNames
) -> _SplitOptions:
    """Check the split options before anything is scanned (bad fractions, a subject named for both splits)."""
    val_names = _subject_names("--val-subjects", val_subjects)
    test_names = _subject_names("--test-subjects", test_subjects)
    val_fraction = 0.0 if val_names is not None else _check_fraction("val-fraction", val_fraction)
    test_fraction = 0.0 if test_names is not None else _check_fraction("test-fraction", test_fraction)
    both = set(val_names or ()) & set(test_names or ())
    if both:
        raise InputError(f"--val-subjects and --test-subjects both name {_listing(both)} (a subject is in ONE split)")
    if val_fraction + test_fraction >= 1.0:
        raise InputError(f"--val-fraction + --test-fraction must be < 1, got {val_fraction} + {test_fraction}")
    return _SplitOptions(val_fraction, test_fraction, val_names, test_names)


def _check_known(options: _SplitOptions, known: Iterable[str], where: str = "") -> None:
    """Every named subject must be one of ``known``; the message lists the known subjects."""
    known = set(known)
    for flag, names in (("--val-subjects", options.val_subjects), ("--test-subjects", options.test_subjects)):
        unknown = set(names or ()) - known
        if unknown:
            raise InputError(
                f"{where}{flag}: unknown subject(s) {_listing(unknown)} "
                f"(the data has {len(known)} subjects: {_listing(known) or 'none'})"
            )


def _split(subjects: Iterable[str], options: _SplitOptions, seed: int, where: str = "") -> dict[str, str]:
    """``subject -> split`` (see the module docstring); ``where`` starts the error messages."""
    unique = sorted({str(s) for s in subjects}, key=_natural_key)
    _check_known(options, unique, where)
    split = {s: "validation" for s in options.val_subjects or ()}
    split.update({s: "test" for s in options.test_subjects or ()})
    rest = [s for s in unique if s not in split]
    if unique and not rest:
        named = f"--val-subjects/--test-subjects name every subject ({_listing(unique)})"
        raise InputError(f"{where}{named}: none left for training")
    random.Random(int(seed)).shuffle(rest)
    n = len(unique)  # fractions of all the subjects, drawn from the subjects not named
    n_test = math.floor(options.test_fraction * n + 0.5)
    n_val = math.floor(options.val_fraction * n + 0.5)
    if options.test_fraction > 0 and len(rest) >= 3:
        n_test = max(n_test, 1)
    if options.val_fraction > 0 and len(rest) >= 2:
        n_val = max(n_val, 1)
    while n_test + n_val > max(len(rest) - 1, 0):  # keep one training subject; give up test before validation
        if n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    split.update({s: "test" for s in rest[:n_test]})
    split.update({s: "validation" for s in rest[n_test : n_test + n_val]})
    split.update({s: "training" for s in rest[n_test + n_val :]})
    return split


def split_subjects(
    subjects: Iterable[str],
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    val_subjects: SubjectNames = None,
    test_subjects: SubjectNames = None,
) -> dict[str, str]:
    """Assign every distinct subject to ``"training"``, ``"validation"`` or ``"test"`` (see the module docstring).

    Raises:
        InputError: bad fractions, a named subject not in ``subjects`` or named for both splits, none left for
            training.
    """
    return _split(subjects, _split_options(val_fraction, test_fraction, val_subjects, test_subjects), seed)


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


def _assign_subjects(items: list[dict], function, problem: str) -> None:
    """Set every ``item["subject"]`` from its ``file`` (paired2d; the key is then dropped) or else its ``case``."""
    missing = []
    for item in items:
        key = item.pop("file", item["case"])
        subject = function(key, item["case"])
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


def _folder_test_split(options: _SplitOptions, items: list[dict], root: Path) -> _SplitOptions:
    """The split options of a layout whose ``test/`` folder is the test split (``lidc_mask2ct``): its patients become
    the named test subjects; each item's ``folder`` entry is dropped."""
    if options.test_subjects is not None or options.test_fraction > 0:
        raise InputError(
            f"{root}: layout {LIDC_LAYOUT} takes its test split from test/; drop --test-fraction/--test-subjects"
        )
    test: set[str] = set()
    for item in items:
        if item.pop("folder") == "test":
            test.add(item["subject"])
    both = test & set(options.val_subjects or ())
    if both:
        raise InputError(f"--val-subjects: {_listing(both)} in {root / 'test'} (the test split), not in train/")
    return options._replace(test_subjects=tuple(sorted(test, key=_natural_key)) or None)


# --------------------------------------------------------------------------------------------------------- main
def _split_items(items: list[dict], split: dict[str, str], suffix: str = "") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {name + suffix: [] for name in SPLITS}
    for item in sorted(items, key=lambda it: (_natural_key(it["subject"]), _natural_key(it["case"]))):
        out[split[item["subject"]] + suffix].append(item)
    return out


def _layout_items(root: Path, layout: str, subject_regex: str | None, manifest: str | None) -> dict[str, list[dict]]:
    """The items of ``layout`` with their ``subject``, by list-name suffix (``""``; unpaired: ``"_mr"``, ``"_ct"``)."""
    if layout == LIDC_LAYOUT:  # the subject is the <ID> of the file names
        if subject_regex is not None or manifest is not None:
            raise InputError(
                f"--subject-regex/--manifest: not used by layout {layout} (subjects are the file names' <ID>)"
            )
        return {"": lidc_items(root)}
    if layout == "unpaired":
        domains = dict(zip(("_mr", "_ct"), _unpaired_cases(root)))
    elif layout == "paired2d":
        domains = {"": _paired2d_cases(root)}
    else:
        domains = {"": _synthrad_cases(root, "synthrad2023" if layout == "stacked2d" else layout)}
    if layout == "paired2d" and subject_regex is None and manifest is None and (root / "manifest.csv").is_file():
        manifest = str(root / "manifest.csv")
    default = None if layout == "paired2d" else (lambda key, other: key)  # volumes: each case is its own subject
    if layout == "stacked2d" and subject_regex is None and manifest is None:
        subjects = {c["case"]: c["subject"] for c in read_stack(root)["cases"]}
        default = lambda key, other: subjects.get(key)  # noqa: E731
    function, problem = _subject_function(subject_regex, manifest, default)
    if layout == "stacked2d" and function is default:
        problem = f"{root / 'stack.json'}: case folder(s) not listed"
    if function is None:
        raise InputError(
            f"{root}: the subject of each slice is unknown: add {root / 'manifest.csv'} "
            "(columns file,subject) or give --manifest or --subject-regex "
            "(slices must be split by subject, never by slice)"
        )
    for items in domains.values():
        _assign_subjects(items, function, problem)
    return domains


def make_datalist(
    root: str,
    layout: str,
    out: str,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    subject_regex: str | None = None,
    manifest: str | None = None,
    val_subjects: SubjectNames = None,
    test_subjects: SubjectNames = None,
) -> Datalist:
    """Find the cases under ``root`` for ``layout``, split them by subject and write the datalist JSON to ``out``.

    Prints nothing and parses no command line (``python -m custom datalist`` does).

    Args:
        root: dataset folder.
        layout: ``synthrad2023``, ``synthrad2025``, ``paired2d``, ``stacked2d``, ``unpaired`` or ``lidc_mask2ct``
            (see the module docstring).
        out: JSON file to write (atomically, with :func:`custom.data.datalist.write_datalist`).
        val_fraction: fraction of the subjects for validation, in [0, 1); ignored when ``val_subjects`` is given.
        test_fraction: fraction of the subjects for test, in [0, 1); ignored when ``test_subjects`` is given.
        seed: seed of the subject shuffle (same seed and same files = same datalist).
        subject_regex: regular expression whose first group is the subject, searched in the file name (paired2d) or
            case id (other layouts).
        manifest: CSV with ``file`` and ``subject`` columns (paired2d default: ``<root>/manifest.csv`` if present).
        val_subjects: the validation subjects: ids as a sequence, a string (``"20"``, ``"20,28"``, ``"20 28"``) or
            an int; recorded in the JSON as ``"val_subjects"`` (strings) instead of ``"val_fraction"``.
        test_subjects: the test subjects, the same way (``"test_subjects"`` in the JSON).

    Returns:
        The datalist dict written (a :class:`~custom.data.datalist.Datalist` with ``path`` = ``out``, whose ``str()``
        is a short summary).

    Raises:
        InputError: unknown layout, missing root, no cases, MR without CT (or CT without MR), slices without a
            subject, bad fractions, a named subject that is not in the data or is named for both splits, no subject
            left for training.
    """
    layout = str(layout).strip().lower()
    if layout not in LAYOUTS:
        raise InputError(f"--layout {layout!r}: unknown layout (choose one of {', '.join(LAYOUTS)})")
    root_path = Path(os.path.expanduser(str(root)))
    if not root_path.is_dir():
        raise InputError(f"{root}: dataset folder not found")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise InputError(f"--seed: expected an integer, got {seed!r}")
    options = _split_options(val_fraction, test_fraction, val_subjects, test_subjects)  # before scanning a big tree

    domains = _layout_items(root_path, layout, subject_regex, manifest)
    if layout == LIDC_LAYOUT:
        options = _folder_test_split(options, domains[""], root_path)
    _check_known(options, {it["subject"] for items in domains.values() for it in items}, f"{root_path}: ")
    data: dict[str, Any] = {}
    for suffix, items in domains.items():
        subjects = {it["subject"] for it in items}
        where = f"{root_path} ({suffix[1:].upper()} volumes): " if suffix else f"{root_path}: "
        data.update(_split_items(items, _split(subjects, options.within(subjects), seed, where), suffix))
    eight_bit = layout in ("paired2d", "stacked2d", LIDC_LAYOUT)
    data.update({"layout": layout, "eight_bit": eight_bit, "root": os.path.abspath(root_path)})
    data["seed"] = int(seed)
    for key, fraction, names in (
        ("val", options.val_fraction, options.val_subjects),
        ("test", options.test_fraction, options.test_subjects),
    ):
        data.update({f"{key}_fraction": fraction} if names is None else {f"{key}_subjects": list(names)})
    listed = [v for items in data.values() if isinstance(items, list) for item in items if isinstance(item, dict)
              for v in item.values() if isinstance(v, str)]  # fmt: skip
    check_output_path(out, listed, "datalist file")
    write_datalist(data, out)
    result = Datalist(data)
    result.path = str(out)
    return result
