"""Dataset checks before training: every problem of every case, reported at once as a (file, problem) table.

``python -m custom check --datalist F [--eight-bit]`` prints the table (or ``OK: N cases, no problems``) and exits
with 1 if there is any problem. Training and inference call :func:`assert_valid_items`.

Per case (:func:`check_case`; keys ``image`` = MR, ``label`` = CT, ``mask``, any may be absent):

- missing or unreadable file, or not a 3D volume (2D slice for 8-bit ``paired2d`` data), through
  :func:`custom.images.read_image` (the reader the bundles use);
- NaN or infinite values; a constant MR or CT (blank image);
- CT or mask shape different from the MR's (the CT is the reference for the mask without an MR);
- geometry different from the MR's: the 4x4 affine ``A = [[D diag(s), o], [0, 1]]`` is split into the origin
  ``o`` (tolerance ``atol_mm``), the voxel spacing ``s`` = column norms (``atol_mm``) and the direction cosines
  ``D`` (``atol_dir``). A direction difference is reported with the axis codes of both images
  (``nibabel.aff2axcodes``, e.g. RAS vs LPS for a flipped volume) or as an oblique rotation when the codes agree;
- an empty mask (no voxel > 0);
- a CT not in Hounsfield units (max < 300 HU or min > -500 HU: no bone or no air), unless ``eight_bit``.

Over a datalist (:func:`check_datalist`): every split (``training``, ``validation``, ``test``, and the
``*_mr``/``*_ct`` lists of the unpaired layout), plus the rules of the datalist as a whole that training applies too
(:func:`datalist_problems`): a ``training`` list, items without any image key, a case listed twice, and the same case,
subject or file in two splits (data leakage between training and evaluation; a warning with ``allow_overlap``).
For 8-bit data, :func:`ct_level_warnings` also names subjects whose CTs were windowed differently (a warning).
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Sequence

import numpy as np

from custom.errors import InputError
from custom.images import read_geometry, read_image
from custom.outputs import output_ext

__all__ = [
    "intensity_problem",
    "check_case",
    "voxel_problems",
    "check_items",
    "check_datalist",
    "ct_level_warnings",
    "datalist_problems",
    "assert_valid_items",
    "format_table",
]

IMAGE_KEYS = ("image", "label", "mask")
_NAMES = {"image": "MR", "label": "CT", "mask": "mask"}
HU_MAX_AT_LEAST = 300.0  # bone
HU_MIN_AT_MOST = -500.0  # air
EIGHT_BIT_SOFT_TISSUE = (20, 249)  # 8-bit CT grey levels that are neither air (0) nor saturated bone (255)
EIGHT_BIT_LEVEL_TOLERANCE = 30.0

Problem = tuple[str, str]
logger = logging.getLogger(__name__)


def _strip(path: str, message: str) -> str:
    """``InputError`` messages start with the file name: the table has its own column for it."""
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _fmt(values: Iterable[float], digits: int = 4) -> str:
    return "(" + ", ".join(f"{v:.{digits}g}" for v in values) + ")"


def _geometry(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(origin, spacing, direction)`` of a 4x4 affine; spacing = column norms, direction = normalised columns."""
    linear = np.asarray(affine, dtype=np.float64)[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    direction = linear / np.where(spacing > 0, spacing, 1.0)[None, :]
    return np.asarray(affine, dtype=np.float64)[:3, 3], spacing, direction


def _axcodes(affine: np.ndarray) -> str:
    import nibabel as nib

    try:
        return "".join(c or "?" for c in nib.aff2axcodes(affine))
    except Exception:  # degenerate affine
        return "???"


def _compare_geometry(
    path: str, affine: np.ndarray, ref_affine: np.ndarray, ref_name: str, atol_mm: float, atol_dir: float
) -> list[Problem]:
    problems = []
    origin, spacing, direction = _geometry(affine)
    r_origin, r_spacing, r_direction = _geometry(ref_affine)
    d = float(np.max(np.abs(origin - r_origin)))
    if d > atol_mm:
        problems.append(
            (path, f"origin {_fmt(origin)} mm differs from the {ref_name}'s {_fmt(r_origin)} mm by up to {d:.3g} mm")
        )
    d = float(np.max(np.abs(spacing - r_spacing)))
    if d > atol_mm:
        problems.append((path, f"voxel spacing {_fmt(spacing)} mm differs from the {ref_name}'s {_fmt(r_spacing)} mm"))
    d = float(np.max(np.abs(direction - r_direction)))
    if d > atol_dir:
        codes, r_codes = _axcodes(affine), _axcodes(ref_affine)
        if codes != r_codes:
            problems.append(
                (path, f"orientation {codes} differs from the {ref_name}'s {r_codes} (axes flipped or swapped)")
            )
        else:
            problems.append(
                (
                    path,
                    f"direction cosines differ from the {ref_name}'s by up to {d:.3g} (both {codes}: rotated, "
                    "e.g. oblique acquisition; resample one onto the other)",
                )
            )
    return problems


def intensity_problem(values: np.ndarray, name: str = "CT", hounsfield: bool = False) -> str | None:
    """What is wrong with the finite ``values`` of an image called ``name``: a constant image (blank), or, with
    ``hounsfield``, values that cannot be a CT in Hounsfield units (no air below -500 or no bone above 300); ``None``
    when nothing is. Shared by ``check`` and ``evaluate``."""
    if not values.size:
        return None
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        return f"constant {name} (every voxel = {lo:g}): blank image?"
    if hounsfield and (hi < HU_MAX_AT_LEAST or lo > HU_MIN_AT_MOST):
        return (
            f"CT values in [{lo:.4g}, {hi:.4g}] do not look like Hounsfield units (expected air near -1000 and bone "
            f"above {HU_MAX_AT_LEAST:g}): normalised, shifted or 8-bit CT?"
        )
    return None


def voxel_problems(path: str, array: np.ndarray, key: str, eight_bit: bool = False) -> list[Problem]:
    """The problems of the voxels of the image of datalist key ``key`` (``image``, ``label`` or ``mask``) read from
    ``path``: NaN or infinite values, an empty mask, a constant image, a CT not in HU unless ``eight_bit``. Shared by
    :func:`check_case` and the checked loader of inference (:class:`custom.transforms.LoadCheckedImaged`)."""
    problems: list[Problem] = []
    name = _NAMES.get(key, key)
    finite = np.isfinite(array)
    values = array
    if not finite.all():  # copy the finite values only when there are others
        problems.append((path, f"{array.size - int(finite.sum())} NaN or infinite value(s) in the {name}"))
        values = array[finite]
    if key == "mask":
        if not np.any(values > 0):
            problems.append((path, "empty mask (no voxel > 0)"))
        return problems
    problem = intensity_problem(values, name, hounsfield=key == "label" and not eight_bit)
    if problem:
        problems.append((path, problem))
    return problems


def check_case(
    item: dict, eight_bit: bool = False, atol_mm: float = 1e-3, atol_dir: float = 1e-4, voxels: bool = True
) -> list[Problem]:
    """All the problems of one datalist item ``{"image": MR, "label": CT, "mask": mask}`` (any key may be absent).

    Args:
        item: datalist item with absolute paths (or relative to the working folder).
        eight_bit: 8-bit grey levels, no HU values: 2D PNG slices, or volumes (e.g. stacked slices).
        atol_mm: tolerance on origin and voxel spacing, mm.
        atol_dir: tolerance on the direction cosines.
        voxels: also check the voxels (:func:`voxel_problems`); without, a NIfTI file's header alone is read
            (:func:`custom.images.read_geometry`): inference checks the voxels of each case as it loads them.

    Returns:
        ``[(file, problem), ...]``, empty when the case is fine.
    """
    problems: list[Problem] = []
    loaded: dict[str, tuple[str, tuple[int, ...], np.ndarray]] = {}
    for key in IMAGE_KEYS:
        if key not in item or item[key] is None:
            continue
        path = str(item[key])
        ndim = 2 if eight_bit and output_ext(path) == ".png" else 3  # 8-bit data: PNG slices, or stacked volumes
        try:
            if voxels:
                array, affine = read_image(path, ndim=ndim)
                shape = tuple(array.shape)
            else:
                shape, affine = read_geometry(path, ndim=ndim)
        except InputError as e:
            message = _strip(path, str(e))
            if not eight_bit and "image is 2D" in message:
                message += " (8-bit PNG slices: use --eight-bit or a paired2d datalist)"
            problems.append((path, message))
            continue
        loaded[key] = (path, shape, affine)
        if voxels:
            problems.extend(voxel_problems(path, array, key, eight_bit))
    reference = "image" if "image" in loaded else "label"
    if reference in loaded:
        ref_path, ref_shape, ref_affine = loaded[reference]
        for key in IMAGE_KEYS:
            if key == reference or key not in loaded:
                continue
            path, shape, affine = loaded[key]
            ref_name = _NAMES[reference]
            if shape != ref_shape:
                problems.append((path, f"shape {shape} differs from the {ref_name}'s {ref_shape}"))
            problems.extend(_compare_geometry(path, affine, ref_affine, ref_name, atol_mm, atol_dir))
    return problems


def check_items(
    items: Sequence[dict], eight_bit: bool = False, voxels: bool = True, **tolerances: float
) -> list[Problem]:
    """:func:`check_case` over a list of items (problems of all items, in order)."""
    problems: list[Problem] = []
    for item in items:
        problems.extend(check_case(item, eight_bit=eight_bit, voxels=voxels, **tolerances))
    return problems


def _leaks(path: str, data: dict, splits: list[str]) -> list[Problem]:
    """The same file, case or subject in two splits of one domain (``training`` vs ``validation``, ``*_mr``...)."""
    problems = []
    domains: dict[str, list[str]] = {}
    for split in splits:
        domains.setdefault(split.rsplit("_", 1)[1] if split.endswith(("_mr", "_ct")) else "", []).append(split)
    for group in domains.values():
        for field, what in (("subject", "subject"), ("case", "case")):
            seen: dict[str, str] = {}
            for split in group:
                for value in sorted({str(it[field]) for it in data[split] if it.get(field) is not None}):
                    if value in seen and seen[value] != split:
                        problems.append((path, f"{what} {value} is in both {seen[value]} and {split} (data leakage)"))
                    seen.setdefault(value, split)
        for key in IMAGE_KEYS:
            seen = {}
            for split in group:
                for file in sorted({os.path.normpath(it[key]) for it in data[split] if isinstance(it.get(key), str)}):
                    if file in seen and seen[file] != split:
                        problems.append((file, f"in both {seen[file]} and {split} (data leakage)"))
                    seen.setdefault(file, split)
    return problems


def datalist_problems(data: dict, allow_overlap: bool = False) -> list[Problem]:
    """The rules of a datalist as a whole, shared by ``check`` and training (:func:`assert_valid_items`):

    - a ``training`` list (``training_mr`` and ``training_ct`` for unpaired data) with at least one case;
    - every item names an ``image``, ``label`` or ``mask``;
    - no case listed twice in one split (:func:`custom.data.datalist.repeated_cases`);
    - no case, subject or file in two splits (data leakage), unless ``allow_overlap`` (then it is logged as a
      warning).

    (Item types are checked when the file is read: :func:`custom.data.datalist.read_datalist`.)
    """
    from custom.data.datalist import datalist_splits, repeated_cases

    splits = datalist_splits(data)
    path = str(getattr(data, "path", None) or "datalist")
    problems: list[Problem] = []
    if "training" not in splits and not {"training_mr", "training_ct"} <= set(splits):
        problems.append((path, "no 'training' list (or 'training_mr' and 'training_ct' for unpaired data)"))
    elif not any(data[s] for s in splits):
        problems.append((path, "no cases (no non-empty list of items such as 'training')"))
    for split in splits:
        for n, item in enumerate(data[split]):
            if not any(k in item for k in IMAGE_KEYS):
                problems.append((path, f"item {n} of {split} has no 'image', 'label' or 'mask' key"))
        for case in repeated_cases(data[split]):
            problems.append((path, f"case {case} is listed more than once in {split}"))
    leaks = _leaks(path, data, splits)
    if allow_overlap:
        for file, problem in leaks:
            logger.warning(f"{file}: {problem}; going on (allow_overlap)")
        return problems
    return problems + leaks


def check_datalist(
    datalist_path: str | os.PathLike | dict, eight_bit: bool | None = None, allow_overlap: bool = False
) -> list[Problem]:
    """All the problems of all the cases of every split of a datalist JSON, and of the datalist as a whole
    (:func:`datalist_problems`).

    Args:
        datalist_path: datalist JSON (paths absolute or relative to its folder), or its content as read by
            :func:`custom.data.datalist.read_datalist`.
        eight_bit: 8-bit grey levels (PNG slices or stacked volumes); ``None``: the JSON's ``eight_bit`` (false when
            absent).
        allow_overlap: a case in two splits is a warning, not a problem.

    Raises:
        InputError: the datalist itself is missing or not valid JSON.
    """
    from custom.data.datalist import datalist_splits, read_datalist

    data = read_datalist(datalist_path)
    if eight_bit is None:
        eight_bit = bool(data.get("eight_bit", False))
    problems = datalist_problems(data, allow_overlap)
    for split in datalist_splits(data):
        problems.extend(check_items(data[split], eight_bit=eight_bit))
    return problems


def ct_level_warnings(data: dict, tolerance: float = EIGHT_BIT_LEVEL_TOLERANCE) -> list[Problem]:
    """Subjects of an 8-bit datalist whose CTs were windowed differently from the others' (warnings, not problems).

    8-bit CTs are windowed per export, and a different window shifts every tissue's grey level. Per subject (the items'
    ``subject``, else ``case``), the level of the CT's soft tissue is the median of its grey levels between
    ``EIGHT_BIT_SOFT_TISSUE`` (neither air nor saturated bone); a subject whose level is more than ``tolerance`` from
    the median of all subjects' levels is reported. The MR cannot tell the windows apart, so such a subject teaches the
    model inconsistent intensities: on the AANLIB dev subset (soft-tissue levels 89-111, one subject 158), training
    with the outlier made a test subject's soft tissue 21 levels too bright (``bundles/pix2pix_ngf/docs/
    experiments.md``). As the validation subject it is no cure either: its brighter CTs make model selection favour a
    brighter brain (same document). Leave it out, or re-window its CTs. Needs at least three subjects.

    Returns:
        ``[(first CT file of the subject, message), ...]``.
    """
    from custom.data.datalist import datalist_splits

    cts: dict[str, list[str]] = {}
    for split in datalist_splits(data):
        for item in data[split]:
            if isinstance(item.get("label"), str):
                subject = str(item.get("subject", item.get("case", item["label"])))
                cts.setdefault(subject, []).append(item["label"])
    lo, hi = EIGHT_BIT_SOFT_TISSUE
    levels: dict[str, float] = {}
    for subject, files in cts.items():
        values = [a[(a >= lo) & (a <= hi)] for a in (_readable(f) for f in files) if a is not None]
        values = [v for v in values if v.size]
        if values:
            levels[subject] = float(np.median(np.concatenate(values)))
    if len(levels) < 3:
        return []
    typical = float(np.median(list(levels.values())))
    return [
        (
            cts[subject][0],
            f"subject {subject}: CT soft-tissue grey level {level:.0f}, the subjects' median {typical:.0f}: a CT "
            "window that differs from the others'? (in training it teaches inconsistent intensities, in validation "
            "it biases model selection; leave it out or re-window its CTs)",
        )
        for subject, level in levels.items()
        if abs(level - typical) > tolerance
    ]


def _readable(path: str) -> np.ndarray | None:
    try:
        return read_image(path, ndim=2)[0]
    except InputError:  # reported by check_case
        return None


def format_table(problems: Sequence[Problem]) -> str:
    """Two aligned columns, ``FILE`` and ``PROBLEM``."""
    width = max([len("FILE")] + [len(f) for f, _ in problems])
    lines = [f"{'FILE':<{width}}  PROBLEM"] + [f"{f:<{width}}  {p}" for f, p in problems]
    return "\n".join(lines)


def assert_valid_items(
    items: Sequence[dict],
    eight_bit: bool = False,
    datalist: dict | None = None,
    allow_overlap: bool = False,
    voxels: bool = True,
) -> None:
    """Raise ONE :class:`InputError` listing every problem of ``items`` (``file: problem``, one per line) and, when
    given, of the ``datalist`` they come from as a whole (:func:`datalist_problems`, the rules ``check`` applies).

    Training and inference call this first, so that a bad case stops the run before hours of work, not in the middle.
    Inference passes ``voxels=False`` (:func:`check_case`): files, formats and geometry of every case are checked
    first, the voxels of each case as they are loaded for it (a NaN in the fifth case of a folder stops the run there,
    the first four sCTs written), so that no volume is read twice.
    """
    problems = [] if datalist is None else datalist_problems(datalist, allow_overlap)
    problems += check_items(items, eight_bit=eight_bit, voxels=voxels)
    if len(problems) == 1:
        raise InputError(f"{problems[0][0]}: {problems[0][1]}")
    if problems:
        lines = "\n".join(f"  {f}: {p}" for f, p in problems)
        raise InputError(f"{len(problems)} problems in the data ({len(items)} cases):\n{lines}")
