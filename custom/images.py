"""Reading images: one loader for every format the package accepts.

Every reader goes through MONAI's ``LoadImage`` so that the arrays and affines seen by the CLI tools (``check``,
``evaluate``) are exactly those seen by the bundles' transforms: NIfTI through nibabel, MHA/NRRD/DICOM through ITK
(affine converted to RAS, like NIfTI), PNG through :class:`GreyPNGReader` (exact 8-bit grey levels of 2D slices),
``.npy`` 2D arrays (e.g. lung masks) through :class:`NumpySliceReader`, indexed like the PNG slices they go with.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monai.data import NumpyReader, PILReader
from monai.transforms import LoadImage

from custom.errors import InputError, short_reason

__all__ = [
    "IMAGE_SUFFIXES",
    "ITK_SUFFIXES",
    "NIFTI_SUFFIXES",
    "NUMPY_SUFFIXES",
    "PNG_SUFFIXES",
    "GreyPNGReader",
    "NumpySliceReader",
    "case_name",
    "check_nifti_header",
    "grey_levels",
    "is_png",
    "read_geometry",
    "read_image",
    "reader_for",
]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr", ".dcm")
PNG_SUFFIXES = (".png",)
NUMPY_SUFFIXES = (".npy",)
IMAGE_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES + PNG_SUFFIXES + NUMPY_SUFFIXES

# MONAI's Orientation inverts a 2D image (PNG) with the 3 axis codes of its 4x4 affine and warns that they are more
# than the image's 2 dimensions, on every PNG inference: nothing for a user to act on (the result is right).
warnings.filterwarnings("ignore", message=r"axcodes .* length is smaller than number of input spatial dimensions")


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
        return "custom.images.GreyPNGReader"
    if p.endswith(NUMPY_SUFFIXES):
        return "custom.images.NumpySliceReader"
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

    Use as ``LoadImaged(keys="image", reader="custom.images.NumpySliceReader")``; :func:`read_image` picks it for
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

    Use as ``LoadImaged(keys=..., reader="custom.images.GreyPNGReader")`` for keys whose files are all PNG (the bundles'
    ``*_png2d.json`` configs): MONAI's ``LoadImage`` tries a named reader on every file and falls back on its own
    readers when ``read`` fails, so the check is made in ``get_data``, whose errors reach the run.
    :func:`read_image` uses it for PNG files.
    """

    def get_data(self, img) -> tuple[np.ndarray, dict]:
        converted = tuple(grey_levels(image) for image in (img if isinstance(img, (list, tuple)) else (img,)))
        return super().get_data(converted if isinstance(img, (list, tuple)) else converted[0])


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


def check_nifti_header(path: str | os.PathLike) -> nib.spatialimages.SpatialImage:
    """Refuse a NIfTI file whose header cannot be right, before a reader allocates memory for it or works around it.

    - Too small for the image its header describes (a corrupt or truncated file, or a header claiming e.g. 1000^3
      voxels in a few KB): the size the header implies (offset of the data + voxels x bytes per voxel) must fit in
      the file, exactly for a ``.nii``, within the best ratio that gzip can reach for a ``.nii.gz`` (whose
      uncompressed size is not known without reading it all).
    - A singular affine (a zero voxel spacing): MONAI's reader would silently replace it by one made from the voxel
      sizes, and the sCT would be written on a grid the MR does not have.

    Returns:
        The image as nibabel loaded it (its header; the voxels are read only when asked for).

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
    return img


def _check_ndim(path: str | os.PathLike, shape: tuple[int, ...], ndim: int | None) -> None:
    expected = ndim if ndim is not None else len(shape)
    if len(shape) != expected or len(shape) not in (2, 3):
        want = f"{expected}D" if ndim is not None else "2D or 3D"
        raise InputError(f"{path}: image is {len(shape)}D with shape {tuple(shape)}, expected {want}")


def read_geometry(path: str | os.PathLike, ndim: int | None = None) -> tuple[tuple[int, ...], np.ndarray]:
    """``(shape, affine)`` of an image as :func:`read_image` would return them, and its errors, without reading the
    voxels of a NIfTI file (its header says both: MONAI's reader takes them from it as they are); other formats are
    read whole. Inference checks a folder with it before the first case runs, and each case's voxels as they are
    loaded (:class:`custom.transforms.LoadCheckedImaged`), so that no volume is decompressed twice.
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    if reader_for(path) != "NibabelReader":
        array, affine = read_image(path, ndim)
        return tuple(array.shape), affine
    img = check_nifti_header(path)
    _check_ndim(path, img.shape, ndim)
    return tuple(img.shape), np.asarray(img.affine, dtype=np.float64)


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
    _check_ndim(path, array.shape, ndim)
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
