"""Tests of custom.metrics.synthrad: golden SynthRAD values, argument checks, 8-bit mode, extras."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from custom.metrics import (
    EIGHT_BIT_RANGE,
    SYNTHRAD2023_RANGE,
    SYNTHRAD2025_RANGE,
    bone_dice,
    compute_metrics,
    local_ssim,
    mae,
    ms_ssim,
    psnr,
    ssim,
)

GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden" / "synthrad_metrics.md"


# ------------------------------------------------------------------------------------------------------------ golden
def _golden_phantom():
    """The phantom of synthrad_metrics.md, built exactly as written there."""
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[0:40, 0:64, 0:64]
    body = ((y - 32) / 28) ** 2 + ((x - 32) / 26) ** 2 <= 1
    bone = ((y - 32) / 10) ** 2 + ((x - 32) / 8) ** 2 <= 1
    ct = np.full(body.shape, -1000.0)
    ct[body] = 40.0
    ct[bone] = 1200.0
    ct = ct + rng.normal(0, 10, ct.shape)
    sct = ct + rng.normal(0, 60, ct.shape)
    sct[bone] -= 150
    ct, sct = np.round(ct).astype(np.int16), np.round(sct).astype(np.int16)
    mask = body.astype(np.uint8)
    return ct, sct, mask


def _golden_table() -> dict[str, dict[str, object]]:
    """Rows of the golden table, read from the md file (values are never copied into the repo)."""
    if not GOLDEN.is_file():
        pytest.skip(f"golden file {GOLDEN} not available")
    rows = {}
    for line in GOLDEN.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not cells[0].startswith("SynthRAD 20"):
            continue
        protocol = "synthrad2023" if "2023" in cells[0] else "synthrad2025"
        lo, hi = (float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", cells[1]))
        values = {}
        for key, cell in zip(("mae", "psnr", "ssim", "ms_ssim"), cells[2:]):
            if cell not in ("-", ""):
                values[key] = float(cell)
        rows[protocol] = {"range": (lo, hi), "values": values}
    assert set(rows) == {"synthrad2023", "synthrad2025"}, f"could not parse the table of {GOLDEN}"
    return rows


@pytest.fixture(scope="module")
def golden():
    table = _golden_table()
    return table, _golden_phantom()


@pytest.mark.parametrize("protocol", ["synthrad2023", "synthrad2025"])
def test_golden_values(golden, protocol):
    table, (ct, sct, mask) = golden
    expected = table[protocol]["values"]
    assert len(expected) == 3
    got = compute_metrics(sct, ct, mask, protocol=protocol)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


def test_golden_ranges_and_single_functions(golden):
    table, (ct, sct, mask) = golden
    assert table["synthrad2023"]["range"] == SYNTHRAD2023_RANGE
    assert table["synthrad2025"]["range"] == SYNTHRAD2025_RANGE
    v23, v25 = table["synthrad2023"]["values"], table["synthrad2025"]["values"]
    assert mae(sct, ct, mask) == pytest.approx(v23["mae"], abs=1e-6)
    assert psnr(sct, ct, mask, SYNTHRAD2025_RANGE) == pytest.approx(v25["psnr"], abs=1e-6)
    assert ssim(sct, ct, mask) == pytest.approx(v23["ssim"], abs=1e-6)
    assert ms_ssim(sct, ct, mask) == pytest.approx(v25["ms_ssim"], abs=1e-6)
    both = compute_metrics(sct, ct, mask, protocol="all")
    assert both["synthrad2023_ssim"] == pytest.approx(v23["ssim"], abs=1e-6)
    assert both["synthrad2025_ms_ssim"] == pytest.approx(v25["ms_ssim"], abs=1e-6)
    assert both["synthrad2025_psnr"] == pytest.approx(v25["psnr"], abs=1e-6)


@pytest.mark.parametrize("shape", [(9, 12, 7), (10, 11, 8), (13, 6)])
def test_box_downsample_equals_fftconvolve_definition(shape):
    from scipy.signal import fftconvolve

    from custom.metrics.synthrad import box_downsample

    a = np.random.default_rng(1).uniform(0, 4095, shape)
    box = np.full((2,) * a.ndim, 1.0 / 2**a.ndim)
    expected = fftconvolve(a, box, mode="same")[(slice(None, None, 2),) * a.ndim]
    got = box_downsample(a)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-8)


# ------------------------------------------------------------------------------------------------------ small cases
def _volume(shape=(12, 20, 20), seed=0):
    rng = np.random.default_rng(seed)
    ct = rng.normal(0.0, 200.0, shape)
    mask = np.zeros(shape, np.uint8)
    mask[2:-2, 3:-3, 3:-3] = 1
    return ct, mask


def test_mae_inside_mask_only_and_unclipped():
    ct, mask = _volume()
    ct[mask > 0] = 5000.0  # beyond every range: MAE must not clip
    pred = ct + 7.0
    pred[mask == 0] += 1000.0  # outside the mask: ignored
    assert mae(pred, ct, mask) == pytest.approx(7.0)
    assert compute_metrics(pred, ct, mask)["mae"] == pytest.approx(7.0)


def test_psnr_formula_and_clipping():
    ct, mask = _volume()
    pred = ct.copy()
    pred[mask > 0] += 20.0
    assert psnr(pred, ct, mask, SYNTHRAD2023_RANGE) == pytest.approx(20 * math.log10(4024 / 20))
    assert psnr(pred, ct, mask, SYNTHRAD2025_RANGE) == pytest.approx(20 * math.log10(4095 / 20))
    # both above the upper bound: identical after clipping
    hi = np.full_like(ct, 3500.0)
    assert psnr(hi + 100, hi, mask) == math.inf


def test_identical_images_are_perfect_3d():
    ct, mask = _volume()
    out23 = compute_metrics(ct, ct, mask, "synthrad2023")
    out25 = compute_metrics(ct, ct, mask, "synthrad2025")
    assert out23["mae"] == 0.0 and out23["psnr"] == math.inf
    assert out23["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert out25["ms_ssim"] == pytest.approx(1.0, abs=1e-12)
    assert out23["bone_dice"] == 1.0


def test_structural_metrics_drop_with_noise_and_ignore_outside_mask():
    ct, mask = _volume()
    rng = np.random.default_rng(5)
    noisy = ct + rng.normal(0, 300, ct.shape)
    less_noisy = ct + rng.normal(0, 50, ct.shape)
    assert ssim(noisy, ct, mask) < ssim(less_noisy, ct, mask) < 0.999
    assert ms_ssim(noisy, ct, mask) < ms_ssim(less_noisy, ct, mask) < 1.0
    # changing voxels outside the mask does not change anything: they are set to the background value
    other = noisy.copy()
    other[mask == 0] = 2500.0
    assert ssim(other, ct, mask) == ssim(noisy, ct, mask)
    assert ms_ssim(other, ct, mask) == ms_ssim(noisy, ct, mask)


def test_keys_per_protocol_and_region():
    ct, mask = _volume()
    pred = ct + 10
    assert set(compute_metrics(pred, ct, mask, "synthrad2023")) == {"mae", "psnr", "ssim", "bone_dice"}
    assert set(compute_metrics(pred, ct, mask, "synthrad2025")) == {"mae", "psnr", "ms_ssim", "bone_dice"}
    region = np.zeros_like(mask)
    region[4:8, 6:14, 6:14] = 1
    out = compute_metrics(pred, ct, mask, "synthrad2025", region_mask=region)
    assert set(out) == {"mae", "psnr", "ms_ssim", "bone_dice", "local_ssim"}
    both = compute_metrics(pred, ct, mask, "all", region_mask=region)
    assert set(both) == {
        "synthrad2023_mae",
        "synthrad2023_psnr",
        "synthrad2023_ssim",
        "synthrad2025_mae",
        "synthrad2025_psnr",
        "synthrad2025_ms_ssim",
        "bone_dice",
        "local_ssim",
    }
    assert both["synthrad2023_ssim"] == compute_metrics(pred, ct, mask, "synthrad2023")["ssim"]
    assert both["local_ssim"] == out["local_ssim"]


def test_local_ssim_reflects_the_region():
    ct, mask = _volume(shape=(16, 32, 32))
    rng = np.random.default_rng(2)
    pred = ct + rng.normal(0, 400, ct.shape)
    pred[:, :, :16] = ct[:, :, :16]  # left half perfect
    left = np.zeros_like(mask)
    left[:, :, :10] = 1  # far enough from the noisy half for the 7-voxel window
    right = np.zeros_like(mask)
    right[:, :, 20:] = 1
    assert local_ssim(pred, ct, mask, left) == pytest.approx(1.0, abs=1e-12)
    assert local_ssim(pred, ct, mask, right) < 0.9
    # region = body mask gives the plain SSIM
    assert local_ssim(pred, ct, mask, mask) == pytest.approx(ssim(pred, ct, mask), abs=1e-12)


def test_bone_dice_properties():
    ct = np.zeros((10, 10))
    pred = np.zeros((10, 10))
    assert bone_dice(pred, ct) == 1.0  # no bone in either: defined as 1
    ct[2:4, 2:4] = 1000.0  # 4 bone pixels
    assert bone_dice(pred, ct) == 0.0
    pred[2:4, 2] = 300.0  # 2 of them, above 250
    assert bone_dice(pred, ct) == pytest.approx(2 * 2 / (4 + 2))
    assert bone_dice(ct, pred) == bone_dice(pred, ct)  # symmetric
    assert bone_dice(pred, ct, threshold=500.0) == 0.0
    pred[2, 2] = 250.0  # threshold is inclusive
    assert bone_dice(pred, ct) == pytest.approx(2 * 2 / 6)
    mask = np.zeros((10, 10), np.uint8)
    mask[:, 2] = 1  # only column 2: bone pixels (2,2),(3,2) in both
    assert bone_dice(pred, ct, mask) == 1.0
    pred[7, 7] = 2000.0  # extra false bone outside the mask is ignored
    assert bone_dice(pred, ct, mask) == 1.0
    assert bone_dice(pred, ct) < 2 * 2 / 6


# --------------------------------------------------------------------------------------------------------- 8-bit 2D
def _slice(seed=0, shape=(48, 40)):
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(120, 40, shape), 0, 255).round()
    mask = np.zeros(shape, np.uint8)
    mask[4:-4, 4:-4] = 255
    return img, mask


def test_eight_bit_identical_and_offset():
    img, mask = _slice()
    for protocol, key in (("synthrad2023", "ssim"), ("synthrad2025", "ms_ssim")):
        out = compute_metrics(img, img, mask, protocol, value_range=EIGHT_BIT_RANGE)
        assert out["mae"] == 0.0
        assert out["psnr"] == math.inf
        assert out[key] == pytest.approx(1.0, abs=1e-12)
    shifted = img.copy()
    shifted[mask > 0] = np.clip(shifted[mask > 0] + 5, 0, 255)
    inside = mask > 0
    expected_mse = np.mean((shifted[inside] - img[inside]) ** 2)
    out = compute_metrics(shifted, img, mask, "synthrad2023", value_range=(0, 255))
    assert out["psnr"] == pytest.approx(10 * math.log10(255**2 / expected_mse))
    assert 0.5 < out["ssim"] < 1.0


def test_eight_bit_background_is_zero():
    img, mask = _slice()
    noisy = np.clip(img + np.random.default_rng(3).normal(0, 30, img.shape), 0, 255)
    ref = ssim(noisy, img, mask, value_range=(0, 255))
    assert 0.3 < ref < 0.99
    # images whose outside-mask pixels are already 0, scored over the whole image (nothing replaced) and averaged
    # in the mask, give the same value: the masked computation uses 0 as background in 8-bit mode.
    outside = mask == 0
    a, b = noisy.copy(), img.copy()
    a[outside] = 0
    b[outside] = 0
    assert local_ssim(a, b, None, mask, value_range=(0, 255)) == pytest.approx(ref, abs=1e-12)
    assert ms_ssim(a, b, None, (0, 255)) != ms_ssim(noisy, img, None, (0, 255))
    assert ms_ssim(a, b, mask, (0, 255)) == pytest.approx(ms_ssim(noisy, img, mask, (0, 255)), abs=1e-12)


# ------------------------------------------------------------------------------------------------------------ errors
def test_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(12, 20, 20\).*\(12, 20, 21\)"):
        compute_metrics(np.zeros((12, 20, 20)), np.zeros((12, 20, 21)), None)
    with pytest.raises(ValueError, match="mask"):
        compute_metrics(np.zeros((12, 20, 20)), np.zeros((12, 20, 20)), np.ones((12, 20, 19)))


def test_empty_mask_and_nan_rejected():
    ct, mask = _volume()
    with pytest.raises(ValueError, match="empty"):
        compute_metrics(ct, ct, np.zeros_like(mask))
    bad = ct.copy()
    bad[3, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(bad, ct, mask)
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(ct, bad, mask, protocol="synthrad2025")
    with pytest.raises(ValueError, match="protocol"):
        compute_metrics(ct, ct, mask, protocol="synthrad2099")
    with pytest.raises(ValueError, match="region_mask"):
        compute_metrics(ct, ct, mask, region_mask=np.zeros_like(mask))


def test_too_small_for_ssim_window():
    with pytest.raises(ValueError, match="too small"):
        compute_metrics(np.zeros((5, 20, 20)), np.zeros((5, 20, 20)), None)
