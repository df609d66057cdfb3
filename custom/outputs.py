"""Writing outputs, and their names: atomic writes (temporary file + rename), MONAI image writers that use them, and
the one naming rule of a case's outputs (``<case>_sct<ext>``) that inference and evaluation share.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monai.data import NibabelWriter, PILWriter
from monai.data.utils import to_affine_nd

from custom.errors import InputError, OutputError
from custom.images import NUMPY_SUFFIXES, PNG_SUFFIXES, case_name

__all__ = [
    "GENERIC_IMAGE_NAMES",
    "SCT_POSTFIX",
    "UNCERTAINTY_POSTFIX",
    "AtomicNibabelWriter",
    "AtomicPILWriter",
    "atomic_write",
    "case_of",
    "check_output_path",
    "output_ext",
    "remove_empty_folders",
    "remove_stale_temp_files",
    "sct_case",
    "sct_file_name",
    "sct_name_formatter",
    "uncertainty_file_name",
    "write_nifti",
    "write_png",
    "write_text",
    "write_texts",
]

# file names that say what an image is, not whose it is (SynthRAD: <ID>/mr.nii.gz)
GENERIC_IMAGE_NAMES = ("mr", "mri", "image", "t1", "t2", "ct")
SCT_POSTFIX = "sct"  # <case>_sct<ext>: the one name of a synthetic CT file (SaveImaged's output_postfix too)
UNCERTAINTY_POSTFIX = "sct_std"  # <case>_sct_std.nii.gz: its uncertainty map (float32, any input format)


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file name beside ``path`` (same suffix: nibabel and PIL pick the format from it); on success
    the file is renamed over ``path``, on any error it is removed. A killed run never leaves a half-written output.
    An ``OSError`` (read-only folder, disk full...) becomes an :class:`OutputError` naming ``path``, and the folders
    made for ``path`` are removed again.

    Example::

        with atomic_write("out/ct.nii.gz") as tmp:
            nib.save(image, tmp)
    """
    path = Path(path)
    tmp = None
    created = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]  # deepest first
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = "".join(path.suffixes) or ".tmp"
        # ".<name>.<8 random characters><suffix>", the name cut so that a name the file system takes has a temporary
        # name it takes too
        room = max(_name_max(path.parent) - len(suffix.encode()) - 10, 1)
        name = path.name.encode()[:room].decode(errors="ignore")
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes owner-only files; outputs get the usual permissions
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        reason = "disk full" if e.errno == errno.ENOSPC else e.strerror or str(e)
        raise OutputError(f"{path}: cannot write ({reason})") from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if not path.exists():  # failed: no empty folder left behind either
            remove_empty_folders(created)


def remove_empty_folders(folders: Sequence[str | os.PathLike]) -> None:
    """Remove ``folders`` (deepest first) while they are empty: what a failed run created and left empty."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:  # not empty, or already gone
            break


def remove_stale_temp_files(path: str | os.PathLike) -> list[str]:
    """Delete what :func:`atomic_write` left beside ``path`` when a run was killed while writing it (temporary files
    ``.<name>.<random><suffix>``); returns the paths removed."""
    path = Path(path)
    suffix = "".join(path.suffixes) or ".tmp"
    removed = []
    for leftover in path.parent.glob(f".{path.name}.*{suffix}"):
        if leftover.is_file():
            leftover.unlink()
            removed.append(str(leftover))
    return removed


def write_text(text: str, path: str | os.PathLike) -> str:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically."""
    return write_texts({path: text})[0]


def write_texts(texts: Mapping[str | os.PathLike, str]) -> list[str]:
    """Write files that make one result (e.g. a table and its summary) together or not at all: every text goes to a
    temporary file first, and only when all are written are they renamed into place."""
    with ExitStack() as stack:
        temporaries = {path: stack.enter_context(atomic_write(path)) for path in texts}
        for path, tmp in temporaries.items():
            try:
                with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                    f.write(texts[path])
            except OSError as e:  # named here: the contexts unwind last-in-first-out and would name another file
                reason = "disk full" if e.errno == errno.ENOSPC else e.strerror or str(e)
                raise OutputError(f"{path}: cannot write ({reason})") from e
    return [str(path) for path in texts]


def write_nifti(array: np.ndarray, affine: np.ndarray, path: str | os.PathLike, dtype: Any = np.int16) -> str:
    """Write ``array`` (spatial dims only) with ``affine`` as NIfTI, atomically (temp file + rename)."""
    img = nib.Nifti1Image(np.asarray(array).astype(dtype), np.asarray(affine, dtype=np.float64))
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    with atomic_write(path) as tmp:
        nib.save(img, tmp)
    return str(path)


def write_png(array: np.ndarray, path: str | os.PathLike, pixel_layout: bool = False) -> str:
    """Write a 2D array as 8-bit PNG (values rounded and clipped to [0, 255]), atomically.

    By default the array is indexed like MONAI's ``PILReader`` output (first axis = image x) and is transposed back;
    with ``pixel_layout=True`` it is already rows x columns (e.g. a figure).
    """
    from PIL import Image

    data = np.clip(np.rint(np.asarray(array, dtype=np.float64)), 0, 255).astype(np.uint8)
    data = np.ascontiguousarray(data if pixel_layout else data.T)
    with atomic_write(path) as tmp:
        Image.fromarray(data).save(tmp, format="PNG")
    return str(path)


class _AtomicWriteMixin:
    """Make a MONAI ``ImageWriter`` write to a temporary file and rename it, so a killed run leaves no half-written
    image behind."""

    def write(self, filename, verbose: bool = False, **obj_kwargs):
        with atomic_write(filename) as tmp:
            super().write(tmp, verbose=verbose, **obj_kwargs)


# the NIfTI header fields of the two transforms, as MONAI's NibabelReader copies them into an image's metadata
_TRANSFORM_FIELDS = ("qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y",
                     "qoffset_z", "pixdim", "srow_x", "srow_y", "srow_z")  # fmt: skip


def _source_transforms(meta: Mapping | None, affine: np.ndarray) -> tuple | None:
    """``((qform, code), (sform, code))`` of the NIfTI header an image was read from, when ``affine`` (the one being
    written) is that header's own (nibabel's and MONAI's choice: the sform if coded, else the qform); else None."""
    if not meta or any(key not in meta for key in _TRANSFORM_FIELDS):
        return None
    header = nib.Nifti1Header()
    try:
        for key in _TRANSFORM_FIELDS:
            header[key] = np.asarray(meta[key], dtype=np.float64)
        read_with = header.get_best_affine()
    except Exception:  # noqa: BLE001 - not a NIfTI header after all: write the plain way
        return None
    if not np.allclose(read_with, affine, atol=1e-4):
        return None
    return header.get_qform(coded=True), header.get_sform(coded=True)


class AtomicNibabelWriter(NibabelWriter):
    """MONAI ``NibabelWriter``, atomic, that gives the output the input's own header transforms. Use as ``"writer":
    "$custom.outputs.AtomicNibabelWriter"`` in ``SaveImaged``.

    A NIfTI header holds two transforms, the qform and the sform, each with a code. When they differ, readers disagree:
    nibabel and MONAI use the sform (when coded), ITK-based tools (3D Slicer, ITK-SNAP, SimpleITK) the qform unless the
    sform's code is 1. MONAI's writer sets both to the one transform it read, so an ITK-based viewer would put the sCT
    somewhere other than its MR. This writer copies both transforms and their codes from the input's header (when the
    image is written on the grid it was read on), so every reader puts the sCT exactly on its MR.

    A volume of depth 1 (a single slice) stays 3D: ``SaveImaged(squeeze_end_dims=True)`` would drop its last axis.
    """

    def set_data_array(self, data_array: Any, channel_dim: int | None = 0, squeeze_end_dims: bool = True, **kwargs):
        super().set_data_array(data_array, channel_dim=channel_dim, squeeze_end_dims=squeeze_end_dims, **kwargs)
        spatial_ndim = data_array.ndim - (0 if channel_dim is None else 1)
        while self.data_obj.ndim < spatial_ndim:
            self.data_obj = self.data_obj[..., None]

    def set_metadata(self, meta_dict: Mapping | None = None, resample: bool = True, **options):
        super().set_metadata(meta_dict, resample=resample, **options)
        self.source_meta = meta_dict

    def write(self, filename, verbose: bool = False, **obj_kwargs):
        affine = to_affine_nd(3, np.asarray(np.eye(4) if self.affine is None else self.affine, dtype=np.float64))
        image = self.create_backend_obj(self.data_obj, affine=affine, dtype=self.output_dtype, **obj_kwargs)
        (qform, qcode), (sform, scode) = _source_transforms(getattr(self, "source_meta", None), affine) or (
            (affine, 1),
            (affine, 1),
        )
        image.set_qform(qform, code=int(qcode))
        image.set_sform(sform, code=int(scode))
        with atomic_write(filename) as tmp:
            nib.save(image, tmp)


class AtomicPILWriter(_AtomicWriteMixin, PILWriter):
    """MONAI ``PILWriter`` (PNG), atomic."""


def output_ext(source: str | os.PathLike) -> str:
    """File suffix of the synthetic CT made from the image ``source``: PNG for a 2D slice (PNG, or a NumPy mask of
    mask2ct_lung), NIfTI for a volume (also for 8-bit volumes, e.g. stacked slices)."""
    return ".png" if str(source).lower().endswith(PNG_SUFFIXES + NUMPY_SUFFIXES) else ".nii.gz"


def sct_file_name(case: str, ext: str = ".nii.gz") -> str:
    """``<case>_sct<ext>``: where inference writes, and evaluation looks for, the synthetic CT of a case."""
    return f"{case}_{SCT_POSTFIX}{ext}"


def uncertainty_file_name(case: str) -> str:
    """``<case>_sct_std.nii.gz``: the uncertainty map of the synthetic CT of a case (float32, so NIfTI also for PNG
    slices)."""
    return f"{case}_{UNCERTAINTY_POSTFIX}.nii.gz"


def _name_max(folder: str | os.PathLike) -> int:
    """The longest file name (bytes) the file system of ``folder`` (or of its nearest existing parent) takes."""
    for parent in (Path(folder), *Path(os.path.abspath(folder)).parents):
        if parent.is_dir():
            try:
                return int(os.pathconf(parent, "PC_NAME_MAX"))
            except (AttributeError, OSError, ValueError):
                break
    return 255


def check_output_path(path: str | os.PathLike, inputs: Any, what: str = "output") -> None:
    """Refuse an output that is a folder (or named like one, ``dir/``), whose name the file system would refuse as too
    long, or that would overwrite one of ``inputs`` (paths; symlinks followed, so a link to an input is refused too):
    ``InputError`` naming both, before anything is written."""
    if str(path).endswith(("/", os.sep)):
        raise InputError(f"{path}: a folder name (it ends with '/'); give the {what} a file name")
    real = os.path.realpath(path)
    if os.path.isdir(real):
        raise InputError(f"{path}: the {what} is a folder; give a file name")
    longest = _name_max(os.path.dirname(os.path.abspath(path)))
    if len(os.path.basename(path).encode()) > longest:
        raise InputError(
            f"{path}: file name too long ({len(os.path.basename(path).encode())} bytes; the file system takes "
            f"{longest}): shorten the input's name or the case id"
        )
    for source in inputs:
        if source and os.path.realpath(source) == real:
            raise InputError(f"{path}: the {what} would overwrite the input {source}; choose another name")


def case_of(path: str | os.PathLike) -> str:
    """Case id of an input image: its folder for SynthRAD-style ``<ID>/mr.nii.gz`` (also when given as a relative
    ``mr.nii.gz``: the working folder), else its file name."""
    name = case_name(path)
    return Path(os.path.abspath(path)).parent.name if name.lower() in GENERIC_IMAGE_NAMES else name


def sct_case(item: Mapping[str, Any]) -> str:
    """The case an item's outputs are named after (``<case>_sct<ext>``, ``figures/<case>.png``), the one rule of
    inference and evaluation: its ``case`` (a datalist's, checked by :func:`custom.data.datalist.read_datalist`), else
    the case of its MR file (:func:`case_of`), else of its CT file."""
    case = item.get("case")
    if case is not None and str(case) != "":
        return str(case)
    return case_of(item.get("image") or item["label"])


def sct_name_formatter(metadict: dict, saver: Any) -> dict:
    """``SaveImage`` name formatter giving ``<case>_<postfix><ext>`` in the output folder: the case that
    :class:`custom.transforms.CaseToMetad` put in the metadata, else the image file's (:func:`case_of`)."""
    metadict = metadict or {}
    case = metadict.get("case") or case_of(str(metadict.get("filename_or_obj", getattr(saver, "_data_index", 0))))
    # MONAI strips what looks like an extension from "subject" (os.path.splitext, twice for ".gz"): give it one to
    # strip, so that a case id with dots ("pat.1") keeps them instead of becoming "pat"
    return {"subject": str(case) + ".nii.gz", "idx": metadict.get("patch_index")}
