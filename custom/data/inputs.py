"""What inference runs on: a datalist split, one image, a SynthRAD-style case folder tree, or a folder of images."""

from __future__ import annotations

from pathlib import Path

from custom.io import ITK_SUFFIXES, NIFTI_SUFFIXES, PNG_SUFFIXES, InputError, case_name, case_of

__all__ = ["inference_items", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES + PNG_SUFFIXES
MR_NAMES = ("mr", "mri")
MASK_NAMES = ("mask",)


def _is_image(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES)


def _named(folder: Path, names: tuple[str, ...]) -> Path | None:
    found = sorted(p for p in folder.iterdir() if _is_image(p) and case_name(p).lower() in names)
    return found[0] if found else None


def _case_folder_items(root: Path) -> list[dict]:
    """SynthRAD-style ``<root>/<ID>/mr.*`` (optionally ``mask.*``), also one level deeper (``<region>/<ID>``)."""
    items = []
    for mr in sorted(root.glob("*/mr.*")) + sorted(root.glob("*/*/mr.*")):
        if not _is_image(mr):
            continue
        item = {"image": str(mr), "case": mr.parent.name}
        mask = _named(mr.parent, MASK_NAMES)
        if mask is not None:
            item["mask"] = str(mask)
        items.append(item)
    return items


def inference_items(
    datalist: str | None = None, dataset_dir: str | None = None, split: str = "test", mask: str | None = None
) -> list[dict]:
    """Items ``{"image", ["mask"], "case"}`` to run inference on.

    Args:
        datalist: a datalist JSON (``python -m custom datalist``): its ``split`` list is used (falling back to
            ``validation`` when ``split`` is empty). Takes precedence over ``dataset_dir``.
        dataset_dir: one image file (NIfTI, MHA, PNG), a SynthRAD-style folder (``<ID>/mr.nii.gz`` with an optional
            ``mask.nii.gz``; ``.mha`` too), or a folder of image files.
        split: datalist split.
        mask: body mask for a single-image ``dataset_dir``.

    Raises:
        InputError: nothing given, path missing, or no image found.
    """
    if datalist:
        from custom.data.datalist import load_datalist

        items = load_datalist(datalist, split)
        if not items and split == "test":
            items = load_datalist(datalist, "validation")
        if not items:
            raise InputError(f"{datalist}: no cases in split {split!r}")
        return [{k: v for k, v in item.items() if k in ("image", "mask", "case")} for item in items]
    if not dataset_dir:
        raise InputError("no input: give a datalist (--datalist) or an image/folder (--dataset_dir)")
    root = Path(dataset_dir)
    if not root.exists():
        raise InputError(f"{root}: file or folder not found")
    if root.is_file():
        if not _is_image(root):
            raise InputError(f"{root}: not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})")
        item = {"image": str(root), "case": case_of(root)}
        if mask:
            item["mask"] = str(mask)
        return [item]
    if mask:
        raise InputError(f"{mask}: a mask goes with a single input image, not with the folder {root}")
    items = _case_folder_items(root)
    if not items:
        items = [{"image": str(p), "case": case_name(p)} for p in sorted(root.iterdir()) if _is_image(p)]
    if not items:
        raise InputError(f"{root}: no MR images found (expected <ID>/mr.nii.gz|.mha or image files)")
    return items
