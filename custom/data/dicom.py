"""One DICOM series to NIfTI through ITK/GDCM, in real-world values (HU for CT) with the patient geometry kept.

Command line: ``python -m custom dicom2nifti --src DICOM_FOLDER --out ct.nii.gz [--series UID]``.

- Series: ``itk.GDCMSeriesFileNames`` groups the files of ``src`` (not its subfolders) by series, with the same
  settings as MONAI's ``ITKReader`` (series details on, split by series date), and sorts the slices along the slice
  normal. Several series and no ``series`` is an error that lists them; ``series`` is the identifier listed, or a
  plain SeriesInstanceUID (0020,000E) when it names one group only.
- Values: GDCM applies the modality rescale, ``value = stored * RescaleSlope (0028,1053) + RescaleIntercept
  (0028,1052)``, which gives Hounsfield units for CT. The volume is read as float32 and written as int16 when every
  value is an integer in the int16 range (the usual CT case), float32 otherwise.
- Geometry: ITK gives origin ``o``, spacing ``s`` and direction cosines ``D`` (columns = voxel axes) in DICOM's
  LPS patient frame, i.e. ``x_LPS = o + D diag(s) [i, j, k]``. NIfTI uses RAS, so ``affine = diag(-1, -1, 1, 1)
  [[D diag(s), o], [0, 1]]`` and the array is stored with i (columns) first, as MONAI's ``ITKReader`` does.
- Slices must be evenly spaced along the normal and not sheared (no missing slices, no gantry tilt): ITK would
  otherwise give a volume with a wrong geometry without an error, so this is checked from ImagePositionPatient.

Reference: DICOM PS3.3 C.7.6.2 (Image Plane) and C.11.1 (Modality LUT); ITK Software Guide, "Reading DICOM series".
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from custom.errors import InputError
from custom.outputs import write_nifti

__all__ = ["list_series", "read_series", "dicom_to_nifti", "lps_to_ras_affine"]

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@contextlib.contextmanager
def _quiet_itk():
    """Silence ITK's console warnings (e.g. non-uniform sampling: checked here with a clear message instead)."""
    import itk

    previous = itk.Object.GetGlobalWarningDisplay()
    itk.Object.SetGlobalWarningDisplay(False)
    try:
        yield itk
    finally:
        itk.Object.SetGlobalWarningDisplay(previous)


def _header(itk, file: str) -> dict[str, str]:
    """A few tags of one DICOM file (empty strings when absent or unreadable)."""
    tags = {"uid": "0020|000e", "modality": "0008|0060", "description": "0008|103e"}
    try:
        io = itk.GDCMImageIO.New()
        io.SetFileName(file)
        io.ReadImageInformation()
        meta = io.GetMetaDataDictionary()
        return {k: str(meta[t]).strip() if meta.HasKey(t) else "" for k, t in tags.items()}
    except Exception:
        return {k: "" for k in tags}


def list_series(src: str | os.PathLike) -> dict[str, dict]:
    """The DICOM series in folder ``src``: ``{identifier: {"files": [...], "uid", "modality", "description"}}``.

    Raises:
        InputError: ``src`` is not a folder, or holds no DICOM series.
    """
    src = Path(os.path.expanduser(str(src)))
    if not src.exists():
        raise InputError(f"{src}: folder not found")
    if not src.is_dir():
        raise InputError(f"{src}: expected the folder holding the DICOM files of a series, got a file")
    with _quiet_itk() as itk:
        names = itk.GDCMSeriesFileNames.New()
        names.SetUseSeriesDetails(True)
        names.AddSeriesRestriction("0008|0021")  # series date, as MONAI's ITKReader
        names.SetDirectory(str(src))
        series = {}
        for identifier in names.GetSeriesUIDs():
            files = [str(f) for f in names.GetFileNames(identifier)]
            if files:
                series[str(identifier)] = {"files": files, **_header(itk, files[0])}
    if not series:
        subfolders = [p.name for p in src.iterdir() if p.is_dir()]
        hint = (
            f" (it has subfolders: {', '.join(sorted(subfolders)[:5])}; give the one holding the files)"
            if subfolders
            else ""
        )
        raise InputError(f"{src}: no DICOM series found{hint}")
    return series


def _describe(series: dict[str, dict]) -> str:
    lines = []
    for identifier, info in series.items():
        extra = ", ".join(x for x in (info["modality"], repr(info["description"]) if info["description"] else "") if x)
        lines.append(f"  {identifier} ({len(info['files'])} files{', ' + extra if extra else ''})")
    return "\n".join(lines)


def _choose(src: Path, series: dict[str, dict], wanted: str | None) -> str:
    if wanted is None:
        if len(series) > 1:
            raise InputError(f"{src}: {len(series)} DICOM series, choose one with --series:\n{_describe(series)}")
        return next(iter(series))
    wanted = str(wanted).strip()
    if wanted in series:
        return wanted
    matches = [k for k, info in series.items() if info["uid"] == wanted]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listing = _describe({k: series[k] for k in matches})
        raise InputError(f"{src}: SeriesInstanceUID {wanted} has {len(matches)} parts, choose one:\n{listing}")
    raise InputError(f"{src}: no DICOM series {wanted}; the series are:\n{_describe(series)}")


def _check_positions(src: Path, identifier: str, positions: list[np.ndarray], direction: np.ndarray, dz: float) -> None:
    """Slices evenly spaced along the normal (no missing or duplicate slice) and not sheared (gantry tilt)."""
    if len(positions) < 2:
        return
    p = np.asarray(positions, dtype=np.float64)
    steps = np.diff(p, axis=0)
    along = steps @ direction[:, 2]
    across = np.linalg.norm(steps - along[:, None] * direction[:, 2][None, :], axis=1)
    tol = max(1e-2 * abs(dz), 1e-3)
    if np.any(np.abs(along) < tol):
        raise InputError(f"{src}: series {identifier}: several slices at the same position (two acquisitions mixed?)")
    if np.ptp(along) > tol:
        raise InputError(
            f"{src}: series {identifier}: slices are not evenly spaced (steps from {along.min():.4g} to "
            f"{along.max():.4g} mm): missing slices?"
        )
    if np.any(across > tol):
        raise InputError(
            f"{src}: series {identifier}: slices are shifted in-plane by up to {across.max():.4g} mm from one to the "
            "next (gantry tilt?): resample the series before converting"
        )


def lps_to_ras_affine(direction: np.ndarray, spacing: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """4x4 RAS affine from ITK's LPS geometry: ``diag(-1, -1, 1, 1) [[D diag(s), o], [0, 1]]``."""
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(direction, dtype=np.float64) * np.asarray(spacing, dtype=np.float64)[None, :]
    affine[:3, 3] = np.asarray(origin, dtype=np.float64)
    return _LPS_TO_RAS @ affine


def _refuse_unreadable_files(src: Path, series: dict[str, dict], identifier: str) -> None:
    """When a series cannot be read or has gaps, name the DICOM files of ``src`` that are in no series: files with
    the DICOM preamble (or a ``.dcm`` suffix) that GDCM could not parse, e.g. a truncated slice, which it leaves
    out of the series without a word."""
    listed = {os.path.normpath(f) for info in series.values() for f in info["files"]}
    bad = []
    for path in sorted(p for p in src.iterdir() if p.is_file() and os.path.normpath(str(p)) not in listed):
        with open(path, "rb") as f:
            if f.read(132)[128:] == b"DICM" or path.suffix.lower() == ".dcm":
                bad.append(str(path))
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(
            f"{bad[0]}: unreadable DICOM file{more} (truncated or corrupt), so series {identifier} of {src} is "
            "incomplete; replace it"
        )


def read_series(src: str | os.PathLike, series: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read one DICOM series of folder ``src`` as ``(float32 array indexed [i, j, k], 4x4 RAS affine)``.

    Raises:
        InputError: no series, several series and no ``series``, unknown ``series``, unreadable or uneven slices.
    """
    src = Path(os.path.expanduser(str(src)))
    available = list_series(src)
    identifier = _choose(src, available, series)
    files = available[identifier]["files"]
    with _quiet_itk() as itk:
        image_type = itk.Image[itk.F, 3]
        try:
            if len(files) == 1:  # one file: a single slice or a multi-frame image
                reader = itk.ImageFileReader[image_type].New(FileName=files[0], ImageIO=itk.GDCMImageIO.New())
                reader.Update()
                dictionaries = []
            else:
                reader = itk.ImageSeriesReader[image_type].New(FileNames=files, ImageIO=itk.GDCMImageIO.New())
                reader.MetaDataDictionaryArrayUpdateOn()
                reader.Update()
                dictionaries = reader.GetMetaDataDictionaryArray()
            image = reader.GetOutput()
        except Exception as e:
            _refuse_unreadable_files(src, available, identifier)
            message = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise InputError(f"{src}: cannot read DICOM series {identifier} ({message})") from None
        direction = np.array(itk.array_from_matrix(image.GetDirection()), dtype=np.float64)
        spacing = np.array(image.GetSpacing(), dtype=np.float64)
        origin = np.array(image.GetOrigin(), dtype=np.float64)
        positions = []
        try:
            for meta in dictionaries:
                values = [float(v) for v in str(meta["0020|0032"]).strip().split("\\")]
                positions.append(values if len(values) == 3 else None)
        except Exception:  # ImagePositionPatient absent or malformed: ITK had to guess, nothing to check
            positions = []
        positions = [] if any(p is None for p in positions) else positions
        array = np.array(itk.array_from_image(image), dtype=np.float32)  # [k, j, i]
    try:
        _check_positions(src, identifier, positions, direction, spacing[2])
    except InputError:
        _refuse_unreadable_files(src, available, identifier)
        raise
    return np.ascontiguousarray(array.transpose(2, 1, 0)), lps_to_ras_affine(direction, spacing, origin)


def dicom_to_nifti(src: str, out: str, series: str | None = None) -> str:
    """Convert one DICOM series of folder ``src`` to the NIfTI file ``out`` (written atomically).

    Args:
        src: folder holding the DICOM files (subfolders are not searched).
        out: output ``.nii.gz`` or ``.nii`` file.
        series: the series to convert when the folder holds several (identifier or SeriesInstanceUID).

    Returns:
        ``out``.

    Raises:
        InputError: see :func:`read_series`; also a bad output name.
    """
    out = os.path.expanduser(str(out))
    if not out.lower().endswith((".nii", ".nii.gz")):
        raise InputError(f"{out}: the output must be a .nii.gz or .nii file")
    if os.path.isdir(out):
        raise InputError(f"{out}: is a folder, expected a .nii.gz file name")
    array, affine = read_series(src, series)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{src}: the series has NaN or infinite values")
    info = np.iinfo(np.int16)
    integer = np.array_equal(array, np.rint(array)) and array.min() >= info.min and array.max() <= info.max
    return write_nifti(array, affine, out, dtype=np.int16 if integer else np.float32)
