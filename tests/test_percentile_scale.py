"""custom.transforms.ScalePercentiles(d): the values of MONAI's ScaleIntensityRangePercentiles(d), to the bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import ScaleIntensityRanged, ScaleIntensityRangePercentiles, ScaleIntensityRangePercentilesd

from custom.transforms import ScalePercentiles, ScalePercentilesd, ScaleRanged


def _images() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    big = torch.randn(1, 128, 128, 72, generator=g) * 300 + 100  # > 1e6 voxels: numpy's percentile in MONAI
    small = torch.rand(1, 256, 256, generator=g) * 255  # <= 1e6 voxels: torch.quantile in MONAI
    affine = torch.diag(torch.tensor([0.9, 1.1, 5.0, 1.0], dtype=torch.float64))
    meta = MetaTensor(torch.rand(2, 40, 30, 20, generator=g), affine=affine, meta={"filename_or_obj": "mr.nii.gz"})
    return [big, small, meta]


@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("percentiles", [(0.5, 99.5), (0.0, 100.0), (2.0, 98.0)])
def test_equals_monai_bitwise(clip: bool, percentiles: tuple[float, float]) -> None:
    lower, upper = percentiles
    ours = ScalePercentiles(lower, upper, -1.0, 1.0, clip=clip)
    monai = ScaleIntensityRangePercentiles(lower, upper, -1.0, 1.0, clip=clip)
    for image in _images():
        expected, got = monai(image), ours(image)
        assert got.dtype == expected.dtype == torch.float32 and type(got) is type(expected)
        assert torch.equal(torch.as_tensor(got), torch.as_tensor(expected))


def test_dictionary_version_and_metadata() -> None:
    image = _images()[2]
    data = {"image": image, "other": torch.ones(1)}
    got = ScalePercentilesd("image", 0.5, 99.5, -1.0, 1.0, clip=True)(data)
    expected = ScaleIntensityRangePercentilesd("image", 0.5, 99.5, -1.0, 1.0, clip=True)(data)
    assert torch.equal(got["image"].as_tensor(), expected["image"].as_tensor())
    assert isinstance(got["image"], MetaTensor)
    assert torch.equal(got["image"].affine, image.affine)
    assert got["image"].meta["filename_or_obj"] == "mr.nii.gz"
    assert got["other"] is data["other"]
    assert torch.equal(image, _images()[2])  # the input is not changed in place
    assert ScalePercentilesd("label", 0, 100, -1, 1, allow_missing_keys=True)({"image": image})["image"] is image


@pytest.mark.parametrize("clip", [True, False])
def test_scale_range_equals_monai_bitwise(clip: bool) -> None:
    for image in _images():
        for a_min, a_max, b_min, b_max in (
            (-1.0, 1.0, -1024.0, 3071.0),
            (0.0, 255.0, -1.0, 1.0),
            (-1.0, 1.0, 0.0, 255.0),
        ):
            args = dict(keys="x", a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=clip)
            expected, got = ScaleIntensityRanged(**args)({"x": image})["x"], ScaleRanged(**args)({"x": image})["x"]
            assert got.dtype == expected.dtype and type(got) is type(expected)
            assert torch.equal(torch.as_tensor(got), torch.as_tensor(expected))


def test_constant_image_as_monai() -> None:
    image = torch.full((1, 8, 8), 7.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ScaleIntensityRangePercentiles(0.5, 99.5, -1.0, 1.0, clip=True)(image)
    with pytest.warns(UserWarning, match="a_min == a_max"):
        got = ScalePercentiles(0.5, 99.5, -1.0, 1.0, clip=True)(image)
    assert torch.equal(torch.as_tensor(got), torch.as_tensor(expected))


def test_integer_input_is_scaled_as_float() -> None:
    image = torch.arange(2000, dtype=torch.int16).reshape(1, 40, 50)
    got = ScalePercentiles(0.0, 100.0, 0.0, 1.0)(image)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy().ravel(), np.arange(2000) / 1999.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("lower, upper", [(-1, 50), (50, 50), (60, 40), (0, 101)])
def test_bad_percentiles(lower: float, upper: float) -> None:
    with pytest.raises(ValueError, match="0 <= lower < upper <= 100"):
        ScalePercentiles(lower, upper, -1.0, 1.0)


def test_bundles_normalise_the_mr_with_it() -> None:
    from monai.bundle import ConfigParser

    from custom.bundles import flat_config

    for config in ("bundles/pix2pix_ngf/configs/inference.json", "bundles/cyclegan_cc/configs/train.json"):
        parser = ConfigParser(flat_config(config))
        key = "preprocessing" if config.endswith("inference.json") else "load_transforms"
        text = str(parser.get(key))
        assert "custom.transforms.ScalePercentilesd" in text and "ScaleIntensityRangePercentilesd" not in text
        assert parser.get("pred_to_ct_range")["_target_"] == "custom.transforms.ScaleRanged"


@pytest.mark.parametrize("sigmas", [6.0, 0.0])  # 0: brackets often miss their rank, the full partition takes over
def test_percentiles_equal_numpy_bitwise(sigmas: float, monkeypatch) -> None:
    """The bracketed order statistics give ``np.percentile``'s values to the bit: continuous values, integers with
    ties, half the volume at 0 (an MR's background), tiny arrays, and the end percentiles."""
    from custom.transforms import percentile_scale

    monkeypatch.setattr(percentile_scale, "BRACKET_SIGMAS", sigmas)
    rng = np.random.default_rng(3)
    background = rng.normal(500, 100, 1_500_000).astype(np.float32)
    background[::2] = 0.0
    arrays = [
        rng.normal(100, 300, 1_200_000).astype(np.float32),
        rng.integers(0, 700, 1_100_000).astype(np.float32),
        background,
        (rng.random(2_000_000) ** 4 * 3000).astype(np.float32),
        np.array([3.0, 1.0], np.float32),
        rng.normal(0, 1, 7).astype(np.float32),
    ]
    for values in arrays:
        q = [0.5, 99.5, 0.0, 100.0, 2.0, 98.0, float(rng.uniform(0, 100))]
        assert percentile_scale.percentiles(values, q) == [float(v) for v in np.percentile(values, q)]
