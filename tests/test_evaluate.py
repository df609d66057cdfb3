"""Tests of custom.scoring and the ``python -m custom evaluate`` command, single case and datalist mode."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from custom.cli import main, parse_range
from custom.errors import InputError
from custom.metrics import format_summary, summarize
from custom.outputs import write_nifti, write_png
from custom.scoring import evaluate_case

REPO = Path(__file__).resolve().parents[1]
SHAPE = (10, 16, 16)
AFFINE = np.diag([1.0, 1.0, 2.0, 1.0])


def _ct() -> np.ndarray:
    ct = np.full(SHAPE, -1000, np.int16)
    ct[1:-1, 2:-2, 2:-2] = 40
    ct[3:7, 6:10, 6:10] = 1000  # bone
    return ct


def _mask() -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint8)
    mask[1:-1, 2:-2, 2:-2] = 1
    return mask


def _write_case(folder: Path, name: str, offset: int, affine=AFFINE) -> dict[str, Path]:
    """CT, body mask and a prediction = CT + offset inside the mask (so MAE = offset, PSNR known)."""
    ct, mask = _ct(), _mask()
    pred = ct.copy()
    pred[mask > 0] += offset
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"ct": folder / f"{name}_ct.nii.gz", "mask": folder / f"{name}_mask.nii.gz"}
    write_nifti(ct, AFFINE, paths["ct"])
    write_nifti(mask, AFFINE, paths["mask"], np.uint8)
    paths["pred"] = folder / f"{name}_sct.nii.gz"
    write_nifti(pred, affine, paths["pred"])
    return paths


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


# ------------------------------------------------------------------------------------------------------ single case
def test_single_case_cli_writes_json(tmp_path, capsys):
    p = _write_case(tmp_path, "c1", offset=20)
    out = tmp_path / "res" / "m.json"
    code = _run(
        ["evaluate", "--pred", str(p["pred"]), "--ct", str(p["ct"]), "--mask", str(p["mask"]), "--json", str(out)]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert set(data) == {"mae", "psnr", "ssim", "bone_dice"}
    assert data["mae"] == pytest.approx(20.0)
    assert data["psnr"] == pytest.approx(20 * math.log10(4024 / 20))
    assert 0.0 < data["ssim"] < 1.0
    assert data["bone_dice"] == 1.0  # 1000 + 20 is still bone, 40 + 20 is not
    assert "mae: 20.000000" in capsys.readouterr().out
    assert not [f for f in out.parent.iterdir() if f.name != "m.json"]  # no temporary file left


def test_single_case_protocol_all_and_range_forms(tmp_path):
    p = _write_case(tmp_path, "c1", offset=20)
    base = ["evaluate", "--pred", str(p["pred"]), "--ct", str(p["ct"]), "--mask", str(p["mask"])]
    out = tmp_path / "all.json"
    assert _run(base + ["--protocol", "all", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["synthrad2025_psnr"] == pytest.approx(20 * math.log10(4095 / 20))
    assert data["synthrad2023_mae"] == data["synthrad2025_mae"] == pytest.approx(20.0)
    assert "synthrad2025_ms_ssim" in data and "synthrad2023_ssim" in data
    # "--range 0 255" (fire: range=0 plus an extra 255) and "--range 0,255" give the same 8-bit-range PSNR
    for flags in (["--range", "0", "255"], ["--range", "0,255"]):
        out = tmp_path / "r.json"
        assert _run(base + flags + ["--json", str(out)]) == 0
        # inside the mask CT is 40/1000, clipped to 40/255; +20 -> 60/255: error 20 on soft tissue, 0 on bone
        ct, mask = _ct().astype(float), _mask() > 0
        err = np.where(ct[mask] == 40, 20.0, 0.0)
        assert json.loads(out.read_text())["psnr"] == pytest.approx(10 * math.log10(255**2 / np.mean(err**2)))


def test_single_case_subprocess(tmp_path):
    p = _write_case(tmp_path, "c1", offset=10)
    out = tmp_path / "m.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "custom", "evaluate", "--pred", str(p["pred"]), "--ct", str(p["ct"])]
    res = subprocess.run(cmd + ["--mask", str(p["mask"]), "--json", str(out)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())["mae"] == pytest.approx(10.0)


def test_grid_mismatch_is_a_clear_error(tmp_path, capsys):
    shifted = AFFINE.copy()
    shifted[0, 3] = 0.5
    p = _write_case(tmp_path, "c1", offset=10, affine=shifted)
    code = _run(["evaluate", "--pred", str(p["pred"]), "--ct", str(p["ct"]), "--mask", str(p["mask"])])
    assert code == 2
    err = capsys.readouterr().err
    assert str(p["pred"]) in err and str(p["ct"]) in err and "0.5 mm" in err
    # different shape
    write_nifti(np.zeros((10, 16, 15)), AFFINE, tmp_path / "small.nii.gz")
    with pytest.raises(InputError, match=r"\(10, 16, 15\) vs \(10, 16, 16\)"):
        evaluate_case(tmp_path / "small.nii.gz", p["ct"], p["mask"])
    # within tolerance: accepted
    close = AFFINE.copy()
    close[1, 3] = 5e-4
    q = _write_case(tmp_path / "ok", "c1", offset=10, affine=close)
    assert evaluate_case(q["pred"], q["ct"], q["mask"], protocols="synthrad2023")["mae"] == pytest.approx(10.0)


def test_evaluate_case_checks_and_defaults(tmp_path):
    p = _write_case(tmp_path, "c1", offset=10)
    out = evaluate_case(p["pred"], p["ct"], p["mask"])  # both protocols by default: prefixed names
    assert out["synthrad2023_mae"] == pytest.approx(10.0) and "synthrad2025_ms_ssim" in out
    # no mask: whole image (outside the body the prediction equals the CT)
    n_body, n_all = _mask().sum(), np.prod(SHAPE)
    assert evaluate_case(p["pred"], p["ct"], protocols="synthrad2023")["mae"] == pytest.approx(10.0 * n_body / n_all)
    write_nifti(np.zeros(SHAPE), AFFINE, tmp_path / "empty.nii.gz", np.uint8)
    with pytest.raises(InputError, match="empty.nii.gz: mask is empty"):
        evaluate_case(p["pred"], p["ct"], tmp_path / "empty.nii.gz")
    bad = _ct().astype(np.float32)
    bad[2, 2, 2] = np.nan
    write_nifti(bad, AFFINE, tmp_path / "nan.nii.gz", np.float32)
    with pytest.raises(InputError, match="nan.nii.gz: .*NaN"):
        evaluate_case(tmp_path / "nan.nii.gz", p["ct"], p["mask"])
    region = np.zeros(SHAPE, np.uint8)
    region[3:7, 5:11, 5:11] = 1
    write_nifti(region, AFFINE, tmp_path / "region.nii.gz", np.uint8)
    out = evaluate_case(p["pred"], p["ct"], p["mask"], "synthrad2023", region_mask_path=tmp_path / "region.nii.gz")
    assert 0.0 < out["local_ssim"] <= 1.0


def test_usage_errors(tmp_path, capsys):
    assert _run(["evaluate"]) == 2
    assert "--datalist" in capsys.readouterr().err
    p = _write_case(tmp_path, "c1", offset=10)
    assert _run(["evaluate", "--pred", str(p["pred"]), "--ct", str(p["ct"]), "--protocol", "x"]) == 2
    assert "unknown protocol" in capsys.readouterr().err


def test_parse_range_and_summarize():
    assert parse_range(None) is None
    assert parse_range((0, 255)) == (0.0, 255.0)
    assert parse_range([-1024, 3000]) == (-1024.0, 3000.0)
    assert parse_range("0,255") == parse_range("0 255") == parse_range("[0, 255]") == (0.0, 255.0)
    for bad in ("0", "255,0", (1, 2, 3), "a,b"):
        with pytest.raises(InputError, match="--range"):
            parse_range(bad)
    stats = summarize([{"case": "a", "mae": 1.0, "psnr": math.inf}, {"case": "b", "mae": 3.0, "psnr": 30.0}])
    assert set(stats) == {"mae", "psnr"}
    assert stats["mae"] == {"mean": 2.0, "std": 1.0, "median": 2.0, "n": 2}
    assert stats["psnr"]["n"] == 1 and stats["psnr"]["mean"] == 30.0  # inf left out


# --------------------------------------------------------------------------------------------------------- datalist
def _datalist(tmp_path: Path, offsets: dict[str, int], split: str = "test") -> tuple[Path, Path]:
    data_dir, pred_dir = tmp_path / "data", tmp_path / "preds"
    items = []
    for case, offset in offsets.items():
        p = _write_case(data_dir / "cases", case, offset)
        pred_dir.mkdir(exist_ok=True)
        os.replace(p["pred"], pred_dir / p["pred"].name)
        # relative to the datalist folder for the CT, absolute for the mask
        items.append(
            {"image": "unused.nii.gz", "label": f"cases/{case}_ct.nii.gz", "mask": str(p["mask"]), "case": case}
        )
    data = {"training": [], "validation": [], "test": [], "layout": "test", "eight_bit": False}
    data[split] = items
    path = data_dir / "datalist.json"
    path.write_text(json.dumps(data))
    return path, pred_dir


def test_datalist_mode_writes_csv_and_summary(tmp_path, capsys):
    datalist, pred_dir = _datalist(tmp_path, {"p01": 10, "p02": 30})
    out_dir = tmp_path / "results"
    code = _run(["evaluate", "--datalist", str(datalist), "--pred-dir", str(pred_dir), "--out-dir", str(out_dir)])
    assert code == 0
    with open(out_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["case"] for r in rows] == ["p01", "p02"]
    assert list(rows[0]) == ["case", "mae", "psnr", "ssim", "bone_dice"]
    assert [float(r["mae"]) for r in rows] == pytest.approx([10.0, 30.0])
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["n"] == 2 and summary["split"] == "test"
    assert summary["metrics"]["mae"] == pytest.approx({"mean": 20.0, "std": 10.0, "median": 20.0, "n": 2})
    expected_psnr = [20 * math.log10(4024 / d) for d in (10, 30)]
    assert summary["metrics"]["psnr"]["mean"] == pytest.approx(np.mean(expected_psnr))
    printed = capsys.readouterr().out
    assert format_summary(summary["metrics"]) in printed  # the one summary table


def test_datalist_fallback_protocol_all_and_default_out_dir(tmp_path):
    datalist, pred_dir = _datalist(tmp_path, {"v1": 5}, split="validation")
    assert _run(["evaluate", "--datalist", str(datalist), "--pred-dir", str(pred_dir), "--protocol", "all"]) == 0
    with open(pred_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["case"] for r in rows] == ["v1"]
    assert {"synthrad2023_ssim", "synthrad2025_ms_ssim", "synthrad2025_psnr", "bone_dice"} <= set(rows[0])
    assert float(rows[0]["synthrad2025_psnr"]) == pytest.approx(20 * math.log10(4095 / 5))
    summary = json.loads((pred_dir / "summary.json").read_text())
    assert summary["split"] == "validation" and summary["protocols"] == ["synthrad2023", "synthrad2025"]
    # --split names the list explicitly; an empty one is an error naming the datalist
    assert _run(["evaluate", "--datalist", str(datalist), "--pred-dir", str(pred_dir), "--split", "test"]) == 2


def test_datalist_missing_prediction(tmp_path, capsys):
    datalist, pred_dir = _datalist(tmp_path, {"p01": 10, "p02": 30})
    (pred_dir / "p02_sct.nii.gz").unlink()
    assert _run(["evaluate", "--datalist", str(datalist), "--pred-dir", str(pred_dir)]) == 2
    assert "p02_sct.nii.gz" in capsys.readouterr().err
    assert not (pred_dir / "metrics.csv").exists()


def test_datalist_eight_bit_png(tmp_path):
    data_dir, pred_dir = tmp_path / "data", tmp_path / "preds"
    rng = np.random.default_rng(0)
    ct = np.clip(rng.normal(120, 30, (32, 24)), 0, 250).round()
    mask = np.zeros_like(ct)
    mask[3:-3, 3:-3] = 255
    write_png(ct, data_dir / "s1_ct.png")
    write_png(mask, data_dir / "s1_mask.png")
    write_png(ct + 5, pred_dir / "s1_sct.png")
    items = [{"image": "s1_mr.png", "label": "s1_ct.png", "mask": "s1_mask.png", "case": "s1"}]
    datalist = data_dir / "datalist.json"
    datalist.write_text(json.dumps({"test": items, "eight_bit": True, "layout": "png"}))
    assert _run(["evaluate", "--datalist", str(datalist), "--pred-dir", str(pred_dir)]) == 0
    summary = json.loads((pred_dir / "summary.json").read_text())
    assert summary["value_range"] == [0.0, 255.0]
    assert summary["metrics"]["mae"]["mean"] == pytest.approx(5.0)
    assert summary["metrics"]["psnr"]["mean"] == pytest.approx(20 * math.log10(255 / 5))
