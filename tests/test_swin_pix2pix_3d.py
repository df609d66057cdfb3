"""swin_pix2pix_3d specifics (the generic bundle tests in test_bundles.py also run it): the density-weighted MAE of its
loss, its 3D discriminator and sliding-window settings, and training on two processes with torchrun
(``multi_gpu_train.json``; CPU and the gloo backend here, NCCL on GPUs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, bundle_configs, tiny_overrides
from monai.bundle import ConfigParser

from custom.losses import DensityWeightedL1Loss

BUNDLE = "swin_pix2pix_3d"


def test_density_weighted_mae_weighs_bone_more_than_air():
    loss = DensityWeightedL1Loss(value_range=(-1.0, 1.0))
    target = torch.tensor([-1.0, 0.0, 1.0])  # air, soft tissue, the top of the CT window (dense bone)
    values = loss(target + 0.2, target)  # the same error everywhere
    assert values[2] > values[1] > values[0] == 0.0
    torch.testing.assert_close(values, (1 + target) / 2 * 0.2)  # W = (1 + G) / 2
    assert DensityWeightedL1Loss(reduction="mean")(target + 0.2, target) == pytest.approx(values.mean().item())
    with pytest.raises(ValueError, match="value_range"):
        DensityWeightedL1Loss(value_range=(1.0, 1.0))


def test_config_is_the_papers_recipe():
    parser = ConfigParser()
    parser.read_config(str(bundle_configs(BUNDLE) / "train.json"))
    ct_window = parser.get_parsed_content("ct_window")
    assert ct_window == [-1024, 3000]  # (HU + 1024) / 4024 * 2 - 1
    assert parser.get_parsed_content("g_optimizer").__class__.__name__ == "AdamW"
    assert parser.get_parsed_content("learning_rate") == 1e-5
    assert parser.get_parsed_content("lr_lambda")(150) == 1.0  # constant LR
    terms = parser.get_parsed_content("generator_losses")
    assert set(terms) == {"mae", "ssim", "adv"}
    assert isinstance(terms["mae"]["loss"], DensityWeightedL1Loss)
    inferer = parser.get_parsed_content("validate#inferer")
    assert type(inferer).__name__ == "SlidingWindowInferer" and inferer.overlap == 0.5 and inferer.mode == "gaussian"


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="no torchrun")
def test_torchrun_two_processes_train_one_model(heads_datalist, tmp_path):
    """Two processes (gloo on CPU) share the training cases, and what they write loads on one process: the
    checkpoint resumes and model.pt loads strictly into network_def (no DDP ``module.`` prefix)."""
    configs = bundle_configs(BUNDLE)
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps(tiny_overrides(BUNDLE)))
    files = [str(configs / "train.json"), str(configs / "multi_gpu_train.json"), str(tiny)]
    command = [
        str(Path(sys.executable).parent / "torchrun"),
        *("--standalone", "--nproc_per_node", "2"),
        *("-m", "monai.bundle", "run", "training", "--config_file", json.dumps(files)),
        *("--meta_file", str(configs / "metadata.json"), "--logging_file", str(configs / "logging.conf")),
        *("--bundle_root", str(tmp_path), "--datalist", str(heads_datalist)),
        *("--ckpt_dir", str(tmp_path / "models"), "--output_dir", str(tmp_path / "runs")),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]

    checkpoint = torch.load(tmp_path / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    # 2 training volumes x 2 patches, batches of 2: one iteration per epoch on each of the two processes
    assert checkpoint["trainer"]["epoch_length"] == 1 and checkpoint["trainer"]["iteration"] == 2
    assert not any(k.startswith("module.") for k in checkpoint["generator"])
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json")])
    parser.update(tiny_overrides(BUNDLE))
    network = parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(tmp_path / "models" / "model.pt", weights_only=True), strict=True)
    network.load_state_dict(checkpoint["generator"], strict=True)
    assert sorted(p.name for p in (tmp_path / "runs" / "samples").glob("*.png")) == [
        "train_epoch0001.png",
        "train_epoch0002.png",
    ]
