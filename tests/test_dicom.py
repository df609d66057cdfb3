"""DICOM series -> NIfTI: HU from the rescale tags, geometry to the RAS affine, series selection errors."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from custom.data.dicom import dicom_to_nifti, list_series
from custom.errors import InputError
from custom.images import read_image

itk = pytest.importorskip("itk")

SPACING = (0.7, 0.9, 2.5)  # column (x), row (y), slice (z), mm
ORIGIN = np.array([-12.5, 30.25, 41.0])  # LPS, mm
ANGLE = np.deg2rad(25.0)
# oblique direction cosines (columns = voxel axes in LPS): rotation about the z axis then about the x axis
_RZ = np.array([[np.cos(ANGLE), -np.sin(ANGLE), 0], [np.sin(ANGLE), np.cos(ANGLE), 0], [0, 0, 1]])
_RX = np.array([[1, 0, 0], [0, np.cos(ANGLE / 2), -np.sin(ANGLE / 2)], [0, np.sin(ANGLE / 2), np.cos(ANGLE / 2)]])
DIRECTION = _RX @ _RZ


def write_series(
    folder: Path, hu: np.ndarray, series_uid: str, skip_slice: int | None = None, slope: float = 1.0
) -> None:
    """Write ``hu`` (indexed [k, j, i]) as a CT series, one file per slice, with RescaleIntercept -1024.

    ITK's GDCM writer applies the inverse rescale, so the stored pixels are ``(hu + 1024) / slope``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    io = itk.GDCMImageIO.New()
    io.KeepOriginalUIDOn()
    row, col = DIRECTION[:, 0], DIRECTION[:, 1]
    for k in range(hu.shape[0]):
        if k == skip_slice:
            continue
        image = itk.image_from_array(np.ascontiguousarray(hu[k].astype(np.int16 if slope == 1 else np.float32)))
        image.SetSpacing([float(SPACING[0]), float(SPACING[1])])  # the writer takes the pixel spacing from here
        position = ORIGIN + DIRECTION[:, 2] * SPACING[2] * k
        meta = itk.MetaDataDictionary()
        for tag, value in {
            "0008|0060": "CT",
            "0008|103e": f"test series {series_uid[-1]}",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.99",
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.6f}" for v in position),
            "0020|0037": "\\".join(f"{v:.8f}" for v in np.concatenate([row, col])),
            "0028|0030": f"{SPACING[1]}\\{SPACING[0]}",  # row spacing (y) first
            "0018|0050": str(SPACING[2]),
            "0028|1052": "-1024",
            "0028|1053": f"{slope:g}",
        }.items():
            meta[tag] = value
        if slope != 1:  # float input: the writer needs the stored pixel type (signed 16 bits)
            for tag, value in {"0028|0100": "16", "0028|0101": "16", "0028|0102": "15", "0028|0103": "1"}.items():
                meta[tag] = value
        image.SetMetaDataDictionary(meta)
        writer = itk.ImageFileWriter[type(image)].New(
            Input=image, FileName=str(folder / f"{series_uid[-1]}_{k:03d}.dcm")
        )
        writer.SetImageIO(io)
        writer.Update()


def expected_affine() -> np.ndarray:
    """RAS affine computed from the geometry written, independently of the code under test."""
    lps = np.eye(4)
    for axis in range(3):
        lps[:3, axis] = DIRECTION[:, axis] * SPACING[axis]
    lps[:3, 3] = ORIGIN
    ras = lps.copy()
    ras[:2, :] *= -1  # x_R = -x_L, y_A = -y_P
    return ras


@pytest.fixture(scope="module")
def hu() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(-1024, 2500, size=(5, 6, 7)).astype(np.int16)  # [k, j, i]


def test_series_to_nifti_hu_and_geometry(tmp_path, hu):
    src = tmp_path / "dicom"
    write_series(src, hu, "1.2.826.0.1.3680043.2.1125.1")
    # the fixture really stores shifted values: the last pixels of an uncompressed file are hu + 1024
    first = sorted(src.iterdir())[0]
    raw = np.frombuffer(first.read_bytes()[-hu[0].size * 2 :], dtype="<i2").reshape(hu[0].shape)
    np.testing.assert_array_equal(raw, hu[0].astype(np.int32) + 1024)

    out = dicom_to_nifti(str(src), str(tmp_path / "ct.nii.gz"))
    assert out == str(tmp_path / "ct.nii.gz")
    img = nib.load(out)
    assert img.get_data_dtype() == np.int16
    data = np.asarray(img.dataobj)
    np.testing.assert_array_equal(data, hu.transpose(2, 1, 0))  # HU, indexed [i, j, k]
    np.testing.assert_allclose(img.affine, expected_affine(), atol=1e-4)
    np.testing.assert_allclose(img.header.get_zooms(), SPACING, atol=1e-5)
    assert nib.aff2axcodes(img.affine) == nib.aff2axcodes(expected_affine())

    # same array and affine as MONAI's ITKReader on the folder (what the bundles would see)
    array, affine = read_image(src)
    np.testing.assert_allclose(array, data, atol=1e-3)
    np.testing.assert_allclose(affine, img.affine, atol=1e-4)


def test_float_output_when_not_integer(tmp_path, hu):
    src = tmp_path / "dicom"
    values = hu.astype(np.float32) / 2 - 512.5  # slope 0.5: odd stored values give half-HU values
    write_series(src, values, "1.2.826.0.1.3680043.2.1125.1", slope=0.5)
    img = nib.load(dicom_to_nifti(str(src), str(tmp_path / "ct.nii")))
    assert img.get_data_dtype() == np.float32
    data = np.asarray(img.dataobj)
    np.testing.assert_allclose(data, values.transpose(2, 1, 0), atol=1e-3)
    assert np.any(data != np.rint(data))


def test_two_series_need_choice(tmp_path, hu):
    src = tmp_path / "dicom"
    write_series(src, hu, "1.2.826.0.1.3680043.2.1125.1")
    write_series(src, -hu, "1.2.826.0.1.3680043.2.1125.2")
    series = list_series(src)
    assert len(series) == 2
    with pytest.raises(InputError) as e:
        dicom_to_nifti(str(src), str(tmp_path / "ct.nii.gz"))
    message = str(e.value)
    assert "2 DICOM series" in message and "--series" in message
    for identifier in series:
        assert identifier in message
    assert message.count("(5 files") == 2
    assert not (tmp_path / "ct.nii.gz").exists()

    with pytest.raises(InputError, match="no DICOM series 9.9.9"):
        dicom_to_nifti(str(src), str(tmp_path / "ct.nii.gz"), series="9.9.9")

    # choosing by the plain SeriesInstanceUID picks that series
    out = dicom_to_nifti(str(src), str(tmp_path / "ct2.nii.gz"), series="1.2.826.0.1.3680043.2.1125.2")
    np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj), -hu.transpose(2, 1, 0))


def test_missing_slice_and_bad_folders(tmp_path, hu):
    src = tmp_path / "gap"
    write_series(src, hu, "1.2.826.0.1.3680043.2.1125.1", skip_slice=2)
    with pytest.raises(InputError, match="not evenly spaced"):
        dicom_to_nifti(str(src), str(tmp_path / "ct.nii.gz"))
    with pytest.raises(InputError, match="folder not found"):
        dicom_to_nifti(str(tmp_path / "nowhere"), str(tmp_path / "ct.nii.gz"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InputError, match="no DICOM series found.*sub"):
        dicom_to_nifti(str(tmp_path / "empty"), str(tmp_path / "ct.nii.gz"))
    with pytest.raises(InputError, match=r"\.nii\.gz or \.nii"):
        dicom_to_nifti(str(src), str(tmp_path / "ct.mha"))


def test_cli(tmp_path, hu):
    from custom.cli import main

    src = tmp_path / "dicom"
    write_series(src, hu, "1.2.826.0.1.3680043.2.1125.1")
    out = tmp_path / "cli.nii.gz"
    with pytest.raises(SystemExit) as e:
        main(["dicom2nifti", "--src", str(src), "--out", str(out)])
    assert e.value.code == 0
    np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj), hu.transpose(2, 1, 0))
    write_series(src, hu, "1.2.826.0.1.3680043.2.1125.2")
    with pytest.raises(SystemExit) as e:
        main(["dicom2nifti", "--src", str(src), "--out", str(out)])
    assert e.value.code == 2


def test_a_truncated_slice_is_named(tmp_path, hu):
    src = tmp_path / "dicom"
    write_series(src, hu, "1.2.826.0.1.3680043.2.1125.1")
    bad = sorted(src.iterdir())[2]
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(InputError, match=rf"{bad}: unreadable DICOM file \(truncated or corrupt\)"):
        dicom_to_nifti(str(src), str(tmp_path / "ct.nii.gz"))


def test_a_dicom_folder_is_one_inference_input(tmp_path, hu):
    from custom.data.inputs import inference_items

    src = tmp_path / "P7"
    write_series(src, hu, "1.2.826.0.1.3680043.2.1125.1")
    assert inference_items(dataset_dir=str(src)) == [{"image": str(src), "case": "P7"}]
    assert read_image(src)[0].shape == hu.T.shape  # one volume, as the bundles' LoadImaged reads it
    write_series(src, hu, "1.2.826.0.1.3680043.2.1125.2")
    with pytest.raises(InputError, match="2 DICOM series in one folder"):
        inference_items(dataset_dir=str(src))
