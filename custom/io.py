"""Reading and writing images: one loader for every format the package accepts, and atomic writers.

Every reader goes through MONAI's ``LoadImage`` so that the arrays and affines seen by the CLI tools (``check``,
``evaluate``) are exactly those seen by the bundles' transforms: NIfTI through nibabel, MHA/NRRD/DICOM through ITK
(affine converted to RAS, like NIfTI), PNG through :class:`GreyPNGReader` (exact 8-bit grey levels of 2D slices),
``.npy`` 2D arrays (e.g. lung masks) through
:class:`NumpySliceReader`, indexed like the PNG slices they go with.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monai.data import NibabelWriter, NumpyReader, PILReader, PILWriter
from monai.data.utils import to_affine_nd
from monai.transforms import LoadImage

__all__ = [
    "InputError",
    "OutputError",
    "Terminated",
    "stop_on_signals",
    "short_reason",
    "NumpySliceReader",
    "GreyPNGReader",
    "grey_levels",
    "reader_for",
    "read_image",
    "atomic_write",
    "remove_stale_temp_files",
    "remove_empty_folders",
    "write_text",
    "write_texts",
    "write_nifti",
    "write_png",
    "AtomicNibabelWriter",
    "AtomicPILWriter",
    "case_of",
    "sct_case",
    "sct_name_formatter",
    "is_png",
    "case_name",
    "SCT_POSTFIX",
    "output_ext",
    "sct_file_name",
    "model_config_path",
]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr", ".dcm")
PNG_SUFFIXES = (".png",)
NUMPY_SUFFIXES = (".npy",)
# file names that say what an image is, not whose it is (SynthRAD: <ID>/mr.nii.gz)
GENERIC_IMAGE_NAMES = ("mr", "mri", "image", "t1", "t2", "ct")
SCT_POSTFIX = "sct"  # <case>_sct<ext>: the one name of a synthetic CT file (SaveImaged's output_postfix too)

# MONAI's Orientation inverts a 2D image (PNG) with the 3 axis codes of its 4x4 affine and warns that they are more
# than the image's 2 dimensions, on every PNG inference: nothing for a user to act on (the result is right).
warnings.filterwarnings("ignore", message=r"axcodes .* length is smaller than number of input spatial dimensions")


class InputError(ValueError):
    """Bad input data: the message names the file and the problem, and is meant to be shown as is."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's ``KeyboardInterrupt`` (whose handling it shares: outputs
    written atomically are either whole or absent), so that a run stopped by ``kill`` or a job scheduler also ends with
    one line and no empty output folder (exit code 143 instead of 130)."""


def _interrupt(signum: int, frame: Any) -> None:
    logging.disable(logging.CRITICAL)  # the engines would log the unwinding as errors: the command says it in one line
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def stop_on_signals() -> None:
    """Make Ctrl-C (SIGINT) raise ``KeyboardInterrupt`` and SIGTERM :class:`Terminated` in the main thread, both
    silencing the logs from then on: a command-line process calls this once at its start."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


class OutputError(InputError):
    """An output that cannot be written (read-only folder, disk full, a folder in the way): the message names the
    file. An :class:`InputError`, so that every command shows it the same way (one line, exit code 2)."""


def _lower(path: str | os.PathLike) -> str:
    return str(path).lower()


def is_png(path: str | os.PathLike) -> bool:
    return _lower(path).endswith(PNG_SUFFIXES)


def case_name(path: str | os.PathLike) -> str:
    """File name without the image suffix (``.nii.gz`` counts as one suffix)."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES[::-1] + ITK_SUFFIXES + PNG_SUFFIXES + NUMPY_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def reader_for(path: str | os.PathLike) -> str:
    """Name of the MONAI reader for ``path``: a folder is a DICOM series (ITK)."""
    p = _lower(path)
    if os.path.isdir(path) or p.endswith(ITK_SUFFIXES):
        return "ITKReader"
    if p.endswith(NIFTI_SUFFIXES):
        return "NibabelReader"
    if p.endswith(PNG_SUFFIXES):
        return "custom.io.GreyPNGReader"
    if p.endswith(NUMPY_SUFFIXES):
        return "custom.io.NumpySliceReader"
    raise InputError(
        f"{path}: unsupported file type (expected .nii, .nii.gz, .mha, .mhd, .nrrd, .png, .npy or a DICOM folder)"
    )


class NumpySliceReader(NumpyReader):
    """MONAI ``NumpyReader`` for ``.npy`` images that indexes 2D arrays like MONAI's ``PILReader``.

    A 2D ``.npy`` array is stored rows x columns (``a[row, column]``, as NumPy and PIL show it), while ``PILReader``
    returns PNG slices column first (``reverse_indexing``: ``x = column``, ``y = row``). This reader transposes 2D
    arrays the same way, ``out[x, y] = a[y, x]``, so a mask ``.npy`` and the PNG slice it was cut with line up
    pixel for pixel, and ``PILWriter`` writes a prediction made from the mask with the mask's own rows and columns.
    Arrays of other dimensions are returned as they are. Pickled objects are never loaded (``allow_pickle=False``).

    Use as ``LoadImaged(keys="image", reader="custom.io.NumpySliceReader")``; :func:`read_image` picks it for
    ``.npy`` files.
    """

    def __init__(self, channel_dim: str | int | None = None, **kwargs: Any) -> None:
        kwargs.pop("allow_pickle", None)
        super().__init__(npz_keys=None, channel_dim=channel_dim, allow_pickle=False, **kwargs)

    def verify_suffix(self, filename: str | os.PathLike) -> bool:
        return str(filename).lower().endswith(NUMPY_SUFFIXES)

    def get_data(self, img) -> tuple[np.ndarray, dict]:
        array, meta = super().get_data(img)
        if array.ndim == 2 and self.channel_dim is None:
            array = np.ascontiguousarray(array.T)
            meta["spatial_shape"] = np.asarray(array.shape)
        return array, meta


def grey_levels(image: Any) -> Any:
    """A PIL image as 8-bit grey levels (mode ``"L"``), exactly, or an :class:`InputError` naming the file.

    Grey slices are stored in many PNG modes; each is converted only where the conversion is exact: ``L`` as it is,
    ``1`` (bilevel) to 0/255, a palette (``P``) through its colours, and ``LA``, ``RGB``, ``RGBA`` when every pixel is
    opaque and its red, green and blue are equal. A colour or transparent image, 16-bit or floating-point values, and
    other modes are refused: read as they are, they would be palette indices or one channel of a colour, silently
    wrong grey levels.
    """
    name = getattr(image, "filename", "") or "image"
    mode = image.mode
    if mode == "L":
        return image
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":
        bits = "16-bit" if mode.startswith("I;16") or mode == "I" else "floating-point"
        raise InputError(f"{name}: a {bits} PNG (mode {mode}); expected 8-bit grey levels (0-255)")
    if mode in ("P", "PA", "La"):
        image = image.convert("RGBA")  # the palette's colours (and transparency), not its indices
        mode = "RGBA"
    if mode not in ("LA", "RGB", "RGBA"):
        raise InputError(f"{name}: image mode {mode}; expected an 8-bit grey PNG")
    pixels = np.asarray(image)
    colour, alpha = (pixels[..., :1], pixels[..., 1]) if mode == "LA" else (pixels[..., :3], None)
    if mode == "RGBA":
        alpha = pixels[..., 3]
    if alpha is not None and np.any(alpha != 255):
        raise InputError(f"{name}: transparent pixels (mode {image.mode}); expected an opaque grey PNG")
    if np.any(colour != colour[..., :1]):
        raise InputError(f"{name}: a colour PNG (its red, green and blue differ); expected grey slices")
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(colour[..., 0]), mode="L")


class GreyPNGReader(PILReader):
    """MONAI ``PILReader`` that reads every PNG as exact 8-bit grey levels or refuses it (:func:`grey_levels`).

    Use as ``LoadImaged(keys=..., reader="custom.io.GreyPNGReader")`` for keys whose files are all PNG (the bundles'
    ``*_png2d.json`` configs): MONAI's ``LoadImage`` tries a named reader on every file and falls back on its own
    readers when ``read`` fails, so the check is made in ``get_data``, whose errors reach the run.
    :func:`read_image` uses it for PNG files.
    """

    def get_data(self, img) -> tuple[np.ndarray, dict]:
        converted = tuple(grey_levels(image) for image in (img if isinstance(img, (list, tuple)) else (img,)))
        return super().get_data(converted if isinstance(img, (list, tuple)) else converted[0])


def short_reason(error: BaseException, limit: int = 200) -> str:
    """``Type: first sentence`` of an error from a library, for a one-line message (torch's and the readers' run to
    several lines of advice)."""
    text = str(error).strip()
    first = text.splitlines()[0].split(". ")[0] if text else ""
    return f"{type(error).__name__}: {first[:limit]}" if first else type(error).__name__


def _unreadable(path: str | os.PathLike, error: Exception) -> InputError:
    return InputError(f"{path}: unreadable image ({short_reason(error)})")


# deflate (gzip) never compresses more than about 1032:1, so a .nii.gz holds at most this many bytes per byte
MAX_GZIP_RATIO = 1032


def _singular(path: str | os.PathLike, affine: np.ndarray) -> InputError | None:
    """The error for an image whose affine maps the grid onto a plane or a line (a voxel spacing of 0, or two axes
    along one direction), else None."""
    linear = np.asarray(affine, dtype=np.float64)[:3, :3]
    if abs(np.linalg.det(linear)) > 1e-12 * max(float(np.abs(linear).max()), 1e-300) ** 3:
        return None
    spacing = np.round(np.linalg.norm(linear, axis=0), 6).tolist()
    return InputError(
        f"{path}: singular affine (voxel spacing {spacing} mm, or two axes along one direction): the image has no "
        "valid geometry"
    )


def check_nifti_header(path: str | os.PathLike) -> None:
    """Refuse a NIfTI file whose header cannot be right, before a reader allocates memory for it or works around it.

    - Too small for the image its header describes (a corrupt or truncated file, or a header claiming e.g. 1000^3
      voxels in a few KB): the size the header implies (offset of the data + voxels x bytes per voxel) must fit in
      the file, exactly for a ``.nii``, within the best ratio that gzip can reach for a ``.nii.gz`` (whose
      uncompressed size is not known without reading it all).
    - A singular affine (a zero voxel spacing): MONAI's reader would silently replace it by one made from the voxel
      sizes, and the sCT would be written on a grid the MR does not have.

    Raises:
        InputError: the file is shorter than its header says, has no NIfTI header, or a singular affine.
    """
    try:
        img = nib.load(str(path))  # reads the header only
        header = img.header
        needed = (
            int(header.get_data_offset()) + int(np.prod(img.shape, dtype=np.float64)) * header.get_data_dtype().itemsize
        )
    except Exception as e:
        raise _unreadable(path, e) from None
    size = os.path.getsize(path)
    compressed = _lower(path).endswith(".gz")
    if needed > size * (MAX_GZIP_RATIO if compressed else 1):
        raise InputError(
            f"{path}: the header describes a {'x'.join(map(str, img.shape))} {header.get_data_dtype()} image "
            f"({needed / 1e6:.4g} MB) that cannot be in a {size} byte{' compressed' if compressed else ''} file "
            "(truncated or corrupt)"
        )
    singular = _singular(path, img.affine)
    if singular is not None:
        raise singular


def read_image(path: str | os.PathLike, ndim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read an image as ``(array, affine)``: a float array without channel dimension and its 4x4 RAS affine.

    Args:
        path: NIfTI, MHA/MHD/NRRD, PNG file or DICOM series folder.
        ndim: if given, the number of spatial dimensions the image must have (3 for volumes, 2 for PNG slices).

    Raises:
        InputError: the file is missing, unreadable, shorter than its header says or with a singular affine
            (:func:`check_nifti_header`), has a channel/time dimension, or has the wrong ``ndim``.
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    reader = reader_for(path)
    if reader == "NibabelReader":
        check_nifti_header(path)
    try:
        loader = LoadImage(reader=reader, image_only=True, dtype=np.float32)
        # that reader only: LoadImage falls back on the others, and ITK "reads" a truncated .nii.gz as zeros
        img = loader(str(path), reader=loader.readers[-1])
    except InputError:  # the reader's own verdict (e.g. a colour PNG)
        raise
    except Exception as e:  # the readers raise many kinds of errors on corrupt files
        raise _unreadable(path, e) from None
    array = np.asarray(img)
    expected = ndim if ndim is not None else array.ndim
    if array.ndim != expected or array.ndim not in (2, 3):
        want = f"{expected}D" if ndim is not None else "2D or 3D"
        raise InputError(f"{path}: image is {array.ndim}D with shape {tuple(array.shape)}, expected {want}")
    affine = np.asarray(img.affine, dtype=np.float64)
    if affine.shape != (4, 4):  # 2D images carry a 3x3 affine
        full = np.eye(4)
        full[:2, :2] = affine[:2, :2]
        full[:2, 3] = affine[:2, 2]
        affine = full
    singular = _singular(path, affine)  # ITK's readers (MHA, NRRD, DICOM) pass one on as it is
    if singular is not None:
        raise singular
    return array, affine


def lower_thread_priority(niceness: int = 19) -> None:
    """Make the calling thread yield the CPU to the others (Linux: per-thread nice value; elsewhere nothing).

    Background I/O threads call this so that they use the cores when the network's threads leave them idle, instead of
    preempting one of its OpenMP threads (on a machine with as many threads as cores, every preemption stalls the
    other threads at the next barrier)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass


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
    "$custom.io.AtomicNibabelWriter"`` in ``SaveImaged``.

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


def output_ext(eight_bit: bool) -> str:
    """File suffix of the images of a dataset: 8-bit data are PNG slices, everything else NIfTI volumes."""
    return ".png" if eight_bit else ".nii.gz"


def sct_file_name(case: str, ext: str = ".nii.gz") -> str:
    """``<case>_sct<ext>``: where inference writes, and evaluation looks for, the synthetic CT of a case."""
    return f"{case}_{SCT_POSTFIX}{ext}"


def flag(value: Any, name: str) -> bool:
    """A config switch as a bool: ``True``/``False``, or the strings ``"true"``/``"false"`` (any case) that a
    command line such as ``--background_io false`` passes (fire keeps lowercase words as strings, and a non-empty string
    is truthy). Anything else is an :class:`InputError` naming the key."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InputError(f"{name}={value!r}: expected true or false")


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


def model_config_path(model_path: str | os.PathLike) -> Path:
    """The JSON beside a model's weights (``models/model.pt`` -> ``models/model.json``) recording what inference
    needs to rebuild the network (its ``network_def``) and prepare the data (windows, orientation, patch size)."""
    return Path(model_path).with_suffix(".json")


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
