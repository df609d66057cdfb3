"""What inference runs on: a datalist split, one image, a case-folder tree, or a folder of images.

Case folders are found by file name (configurable per bundle in ``inference.json``'s ``input_names``): with the
default ``image_names=("mr", "mri")`` and ``mask_names=("mask",)``, SynthRAD-style ``<root>/<ID>/mr.nii.gz`` (with an
optional ``mask.nii.gz``), also one level deeper (``<root>/<region>/<ID>/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from custom.errors import InputError
from custom.images import IMAGE_SUFFIXES, case_name
from custom.outputs import case_of

__all__ = ["inference_items"]
DICOM_SUFFIXES = (".dcm",)


def _is_image(path: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> bool:
    return path.is_file() and path.name.lower().endswith(tuple(suffixes))


def _named(folder: Path, names: Sequence[str]) -> Path | None:
    found = sorted(p for p in folder.iterdir() if _is_image(p) and case_name(p).lower() in names)
    return found[0] if found else None


def _case_folder_items(root: Path, image_names: Sequence[str], mask_names: Sequence[str]) -> list[dict]:
    """``<root>/<ID>/<image name>.*`` (optionally ``<mask name>.*``), also one level deeper (``<region>/<ID>``)."""
    items = []
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    folders += sorted(q for p in folders for q in p.iterdir() if q.is_dir())
    for folder in folders:
        image = _named(folder, image_names)
        if image is None:
            continue
        item = {"image": str(image), "case": folder.name}
        mask = _named(folder, mask_names)
        if mask is not None:
            item["mask"] = str(mask)
        items.append(item)
    return items


def _dicom_series_item(root: Path) -> dict:
    """A folder of DICOM files is one volume (MONAI's ITK reader reads the series), not one image per slice."""
    from custom.data.dicom import list_series

    series = list_series(root)
    if len(series) > 1:
        raise InputError(
            f"{root}: {len(series)} DICOM series in one folder; convert the one to use with python -m custom "
            f"dicom2nifti {root} mr.nii.gz --series ID (python -m custom dicom2nifti lists them)"
        )
    return {"image": str(root), "case": root.name}


def inference_items(
    datalist: str | dict | None = None,
    dataset_dir: str | None = None,
    split: str | None = None,
    mask: str | None = None,
    image_names: Sequence[str] = ("mr", "mri"),
    mask_names: Sequence[str] = ("mask",),
    suffixes: Sequence[str] | None = None,
) -> list[dict]:
    """Items ``{"image", ["mask"], "case"}`` to run inference on.

    Args:
        datalist: a datalist JSON (``python -m custom datalist``) or its content: its ``split`` list is used.
            Takes precedence over ``dataset_dir``.
        dataset_dir: one image file (NIfTI, MHA, PNG), a case-folder tree, a folder of image files, or a folder of
            the ``.dcm`` files of one DICOM series (one volume, case = the folder's name).
        split: datalist split; default ``test``, or ``validation`` when ``test`` is empty
            (:func:`custom.data.datalist.evaluation_split`).
        mask: body mask for a single-image ``dataset_dir``.
        image_names, mask_names: file names (without suffix, lower case) of the image and the mask in a case folder.
        suffixes: the input file types the bundle takes (e.g. ``[".npy"]``: lung masks, so that the PNG slices
            beside them in a folder are not taken as inputs); default every image type (:data:`IMAGE_SUFFIXES`).

    Raises:
        InputError: nothing given, path missing, no image found, several DICOM series in one folder, or a folder
            holding both case folders and loose images.
    """
    if datalist:
        from custom.data.datalist import evaluation_split, read_datalist

        data = read_datalist(datalist)
        items = data[evaluation_split(data, split)]
        return [{k: v for k, v in item.items() if k in ("image", "mask", "case")} for item in items]
    if not dataset_dir:
        raise InputError("no input: give a datalist (--datalist) or an image/folder (--dataset_dir)")
    root = Path(dataset_dir)
    if not root.exists():
        raise InputError(f"{root}: file or folder not found")
    suffixes = tuple(s.lower() for s in (IMAGE_SUFFIXES if suffixes is None else suffixes))
    if root.is_file():
        if not _is_image(root, suffixes):
            raise InputError(f"{root}: not an input file of this bundle (expected one of {', '.join(suffixes)})")
        item = {"image": str(root), "case": case_of(root)}
        if mask:
            item["mask"] = str(mask)
        return [item]
    if mask:
        raise InputError(f"{mask}: a mask goes with a single input image, not with the folder {root}")
    if any(_is_image(p, DICOM_SUFFIXES) for p in root.iterdir()):
        return [_dicom_series_item(root)]
    names = [n.lower() for n in image_names]
    items = _case_folder_items(root, names, [n.lower() for n in mask_names])
    loose = [p for p in sorted(root.iterdir()) if _is_image(p, suffixes)]
    if items and loose:  # one kind per folder: taking one and skipping the other silently would lose cases
        folders = ", ".join(Path(item["image"]).parent.name for item in items[:3]) + (", ..." if len(items) > 3 else "")
        files = ", ".join(p.name for p in loose[:3]) + (", ..." if len(loose) > 3 else "")
        raise InputError(
            f"{root}: holds case folders ({folders}) and loose images ({files}); give a folder of one kind (case "
            "folders <ID>/mr.nii.gz, or image files)"
        )
    if not items:
        items = [{"image": str(p), "case": case_name(p)} for p in loose]
    if not items:
        raise InputError(
            f"{root}: no images found (expected <ID>/{names[0]}.<suffix> folders or {'/'.join(suffixes)} files)"
        )
    return items
