"""``multi_gpu_train.json``: a bundle trains with ``torchrun`` on two processes (CPU and the gloo backend here; NCCL on
GPUs), the processes share the training data and end with identical generator weights, and what rank 0 writes is a
one-process model: the checkpoint has no DDP ``module.`` prefix, ``model.pt`` loads strictly into ``network_def`` and
runs in ``custom infer`` unchanged.

Every bundle's ``multi_gpu_train.json`` is the base's (it starts the process group; the networks, samplers and handlers
of the training config adapt by themselves), so two bundles exercise all of it: a paired one (the base's trainer and
``sampler_for``) and the unpaired one (its own sampler)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import BUNDLES, ROOT, bundle_configs, bundle_data, tiny_overrides
from monai.bundle import ConfigParser

from custom.inference import run_bundle_inference

TORCHRUN = Path(sys.executable).parent / "torchrun"
MULTI_GPU_BUNDLES = [b for b in ("pix2pix_ngf", "cyclegan_cc") if b in BUNDLES]

# after training, each process saves its generator's weights, so the test can compare the two processes
SAVE_EACH_RANK = {
    "finalize": [
        "$torch.save(@network_def.state_dict(), @ckpt_dir + '/rank' + str(dist.get_rank()) + '.pt')",
        "$dist.is_initialized() and dist.destroy_process_group()",
    ]
}


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="no torchrun beside this Python")
@pytest.mark.parametrize("bundle", MULTI_GPU_BUNDLES)
def test_torchrun_two_processes_train_one_model(bundle, request, tmp_path):
    configs = bundle_configs(bundle)
    datalist = request.getfixturevalue(bundle_data(bundle).fixture)
    extra = tmp_path / "tiny.json"
    extra.write_text(json.dumps({**tiny_overrides(bundle), **SAVE_EACH_RANK}))
    files = [str(configs / "train.json"), str(configs / "multi_gpu_train.json"), str(extra)]
    command = [
        str(TORCHRUN),
        *("--standalone", "--nproc_per_node", "2"),
        *("-m", "monai.bundle", "run", "training", "--config_file", json.dumps(files)),
        *("--meta_file", str(configs / "metadata.json"), "--logging_file", str(configs / "logging.conf")),
        *("--bundle_root", str(tmp_path), "--datalist", str(datalist)),
        *("--ckpt_dir", str(tmp_path / "models"), "--output_dir", str(tmp_path / "runs")),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]

    models = tmp_path / "models"
    rank0, rank1 = (torch.load(models / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0, msg=key)

    one_process = ConfigParser()
    one_process.read_config(str(configs / "train.json"))
    one_process.update(tiny_overrides(bundle))
    one_process["datalist"] = str(datalist)
    batches_alone = len(one_process.get_parsed_content("train#trainer#train_data_loader"))
    checkpoint = torch.load(models / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert checkpoint["trainer"]["epoch_length"] == -(-batches_alone // 2)  # each process: half of the batches
    assert not any(k.startswith("module.") for k in checkpoint["generator"])
    network = one_process.get_parsed_content("network_def")
    network.load_state_dict(checkpoint["generator"], strict=True)
    network.load_state_dict(torch.load(models / "model.pt", weights_only=True), strict=True)

    written = run_bundle_inference(
        ROOT / "bundles" / bundle,
        ckpt=models / "model.pt",
        datalist=str(datalist),
        split="validation",
        output_dir=str(tmp_path / "sct"),
    )
    validation = json.loads(Path(datalist).read_text())["validation"]
    assert len(written) == len(validation)
    for path, item in zip(written, validation):
        bundle_data(bundle).check_output(Path(path), item["image"])


def test_every_bundle_starts_torchrun_with_the_base():
    """What the two bundles above show holds for all: each bundle's multi_gpu_train.json takes the base's entries."""
    for bundle in BUNDLES:
        entries = json.loads((bundle_configs(bundle) / "multi_gpu_train.json").read_text())
        assert all(v == f"%bundles/_base/configs/multi_gpu_train.json#{k}" for k, v in entries.items()), bundle
