"""A config override that names no key of the config is one clear error (exit code 2), not a new unused key: under
``python -m monai.bundle run`` on our configs and in ``python -m custom infer``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from custom.config_keys import unknown_overrides
from custom.errors import InputError

CONFIG = {"epochs": 200, "val_interval": 5, "network_def": {"features": [1, 2]}, "losses": {"l1": {"weight": 1}}}


def test_existing_ids_and_new_entries_of_a_mapping_are_fine():
    ok = ["epochs", "network_def#features", "network_def#features#1", "losses#ssim", "network_def#dropout", "+losses"]
    assert unknown_overrides(CONFIG, ok) == {}


def test_unknown_top_level_keys_get_the_closest_existing_ones():
    unknown = unknown_overrides(CONFIG, ["epoch", "val_intervall", "nothing_like_it", "network_def#features#7"])
    assert unknown["epoch"][0] == "epochs"
    assert unknown["val_intervall"][0] == "val_interval"
    assert unknown["nothing_like_it"] == []
    assert "network_def#features#7" in unknown  # an index past the end of a list


def _run(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, encoding="utf-8",
                          errors="replace", timeout=300)  # fmt: skip


def test_monai_bundle_run_stops_on_a_misspelt_override(tmp_path):
    config = str(ROOT / "bundles" / "pix2pix_ngf" / "configs" / "train.json")
    args = ["-m", "monai.bundle", "run", "training", "--config_file", config, "--epoch", "1"]
    result = _run(args + ["--bundle_root", str(tmp_path), "--ckpt_dir", str(tmp_path / "models")], ROOT)
    assert result.returncode == 2
    assert "--epoch (did you mean --epochs" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "models").exists()  # nothing was run


def test_custom_infer_stops_on_a_misspelt_override(heads_datalist, tmp_path):
    from custom.inference import run_bundle_inference

    with pytest.raises(InputError, match=r"--patch_sise \(did you mean --patch_size"):
        run_bundle_inference(ROOT / "bundles" / "pix2pix_ngf", datalist=str(heads_datalist), patch_sise=[64, 64])


def test_values_out_of_a_settings_range_are_refused():
    from custom.config_keys import check_override_values

    config = {"ema_momentum": 0.02, "epochs": 10}
    check_override_values(config, {"ema_momentum": 0.5, "epochs": 3}, where="train")
    for value in (0, 1, 1.5):  # the weight average's momentum is open at both ends (ignite refuses 0 and 1)
        with pytest.raises(InputError, match=r"ema_momentum .*expected a number in \(0, 1\)"):
            check_override_values(config, {"ema_momentum": value}, where="train")


def test_monai_bundle_run_refuses_a_none_it_would_drop(monkeypatch, capsys, tmp_path):
    """MONAI's runner ignores ``--minutes None`` (its update_kwargs drops None), so the 25-minute budget of a quick
    recipe would stay: start() stops with one line instead of training to the budget the user meant to remove."""
    from custom import monai_run

    config = str(ROOT / "bundles" / "pix2pix_ngf" / "configs" / "train.json")
    argv = ["/venv/lib/monai/bundle/__main__.py", "run", "training", "--config_file", config]
    monkeypatch.setattr(sys, "argv", argv + ["--minutes", "None"])
    with pytest.raises(SystemExit) as stopped:
        monai_run.start([tmp_path / "models"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "--minutes None" in err and '"minutes": null' in err
    monkeypatch.setattr(sys, "argv", argv + ["--minutes", "5"])  # a number passes (and start() installs its hooks)
    try:
        monai_run.start([tmp_path / "models"])
    finally:
        monai_run.end()
    assert capsys.readouterr().err == ""
