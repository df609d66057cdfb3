"""mask2ct_lung specifics at tiny sizes: one epoch through ConfigWorkflow with the issue's loss recipe, the log, grid
and checkpoint cadence, mask .npy -> PNG inference of the mask's size, evaluation with SSIM in the nodule region and
the TorchScript export. What every bundle must do is in ``test_bundles.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, bundle_configs, train_workflow
from ignite.engine import Events
from monai.losses import PatchAdversarialLoss
from monai.networks.nets import PatchDiscriminator
from PIL import Image

from custom.data.lidc import NODULE_THRESHOLD, nodule_region
from custom.engines import Pix2PixTrainer
from custom.errors import InputError
from custom.images import read_image
from custom.inference import run_bundle_inference
from custom.losses import SeparableSSIMLoss

BUNDLE = ROOT / "bundles" / "mask2ct_lung"


def lung(datalist: Path, work: Path, **overrides):
    return train_workflow("mask2ct_lung", datalist, work, **overrides)


@pytest.fixture(scope="module")
def trained(lung_datalist, tmp_path_factory) -> tuple[Path, list[int]]:
    """(work folder, epochs at which checkpoint_last.pt held a new epoch) after four epochs with a 2-epoch cadence
    of the training log, the sample grid and the checkpoint (tests/tiny/mask2ct_lung.json)."""
    work = tmp_path_factory.mktemp("mask2ct_cadence")
    workflow = lung(lung_datalist, work, epochs=4)
    trainer = workflow.parser.get_parsed_content("train#trainer")
    saved: list[int] = []

    @trainer.on(Events.EPOCH_COMPLETED)
    def checkpoint_epoch(engine):  # runs after the config's handlers of the same event
        path = work / "models" / "checkpoint_last.pt"
        if path.is_file():
            progress = torch.load(path, map_location="cpu", weights_only=True)["trainer"]
            saved.append(progress["iteration"] // progress["epoch_length"])

    workflow.run()
    workflow.finalize()
    return work, saved


def test_one_epoch_through_config_workflow_with_the_issue_recipe(lung_datalist, tmp_path):
    workflow = lung(lung_datalist, tmp_path, epochs=1)
    assert not workflow.check_properties()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    assert isinstance(trainer, Pix2PixTrainer) and trainer.conditional
    terms = trainer.g_losses.terms
    assert {name: term.weight for name, term in terms.items()} == {"adv": 1.0, "l1": 100.0, "ssim": 5.0}
    assert terms["adv"].inputs == ["d_fake"] and isinstance(terms["ssim"].loss, SeparableSSIMLoss)
    adversarial = workflow.parser.get_parsed_content("gan#adversarial_loss")
    assert isinstance(adversarial, PatchAdversarialLoss) and adversarial.criterion == "bce"
    discriminator = workflow.parser.get_parsed_content("gan#discriminator")
    assert isinstance(discriminator, PatchDiscriminator) and discriminator.initial_conv.conv.in_channels == 2
    workflow.run()
    assert trainer.state.epoch == 1
    metrics = trainer.state.metrics
    assert all(np.isfinite(metrics[k]) for k in ("loss_g", "loss_d", "loss_adv", "loss_l1", "loss_ssim"))
    assert 0 < metrics["loss_ssim"] <= 2
    out = trainer.state.output[0]
    assert out["loss_g"] == pytest.approx(out["loss_adv"] + 100 * out["loss_l1"] + 5 * out["loss_ssim"], rel=1e-5)
    assert out["image"].shape == out["label"].shape == out["pred"].shape == (1, 64, 64)
    assert set(np.unique(out["image"].numpy())) <= {-1.0, 1.0}  # the mask, in the network's range
    validation = workflow.parser.get_parsed_content("validate#evaluator").state.metrics
    assert {"val_mae", "val_ssim", "val_psnr"} <= set(validation) and 0 < validation["val_mae"] < 255
    assert (tmp_path / "models" / "model.pt").is_file() and (tmp_path / "models" / "model.json").is_file()


def test_log_grid_and_checkpoint_every_two_epochs(trained):
    work, saved = trained
    assert sorted(p.name for p in (work / "runs" / "samples").glob("*.png")) == [
        "train_epoch0002.png",
        "train_epoch0004.png",
    ]
    lines = [line.split("\t") for line in (work / "runs" / "training_log.tsv").read_text().splitlines()]
    header = lines[0]
    assert header[:3] == ["epoch", "time", "lr"] and {"loss_g", "loss_d", "loss_ssim", "val_ssim"} <= set(header)
    assert [line[0] for line in lines[1:]] == ["2", "4"]
    for line in lines[1:]:
        assert all(np.isfinite(float(cell)) for cell in line[2:])
    assert saved == [2, 2, 4]  # nothing after epoch 1, epoch 2 kept through epoch 3, then epoch 4


def mask_file(path: Path, rows: int, columns: int) -> Path:
    """A 0/1 mask with a lung-like blob on the left of the image (columns < columns / 2)."""
    mask = np.zeros((rows, columns), np.uint8)
    mask[rows // 4 : 3 * rows // 4, columns // 8 : columns // 2 - 2] = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, mask)
    return path


def test_the_mask_npy_lines_up_with_its_png(tmp_path):
    """The .npy reader indexes a mask like MONAI's PIL reader indexes the PNG slice cut with it."""
    mask = mask_file(tmp_path / "a_lung_mask_1.npy", 20, 30)
    Image.fromarray(np.load(mask) * 255).save(tmp_path / "a_slice_1.png")
    npy, _ = read_image(mask)
    png, _ = read_image(tmp_path / "a_slice_1.png")
    assert npy.shape == png.shape == (30, 20) and np.array_equal(npy * 255, png)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickled.npy: unreadable image"):
        read_image(pickled)


def test_inference_writes_pngs_of_each_mask_size(trained, tmp_path, capsys):
    from custom.cli import main

    work, _ = trained
    folder = tmp_path / "masks"
    mask_file(folder / "p1_combined_mask_3.npy", 64, 64)
    mask_file(folder / "p2_lung_mask_7.npy", 40, 56)  # smaller than the training size and not square
    mask_file(folder / "p3_lung_mask_9.npy", 72, 80)  # larger, not a multiple of the network's 8
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / "p1_slice_3.png")  # a slice beside: not an input
    model = str(work / "models" / "model.pt")
    args = ["--bundle", str(BUNDLE), "--ckpt", model, "--input", str(folder), "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_:
        main(["infer", *args])
    assert exit_.value.code == 0
    written = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{tmp_path / 'out'}/")]
    assert [Path(p).name for p in written] == [
        "p1_combined_mask_3_sct.png",
        "p2_lung_mask_7_sct.png",
        "p3_lung_mask_9_sct.png",
    ]
    for name, (columns, rows) in {"p1_combined": (64, 64), "p2_lung": (56, 40), "p3_lung": (80, 72)}.items():
        (path,) = (tmp_path / "out").glob(f"{name}_*_sct.png")
        with Image.open(path) as sct:
            assert sct.size == (columns, rows) and sct.mode == "L"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(Path(p).name for p in written)
    # one mask file as input
    single = run_bundle_inference(
        BUNDLE, ckpt=work / "models" / "model.pt", dataset_dir=str(folder / "p2_lung_mask_7.npy"), output_dir=tmp_path
    )
    assert [Path(p).name for p in single] == ["p2_lung_mask_7_sct.png"]


def test_inference_refuses_a_mask_that_is_not_0_or_1(trained, tmp_path):
    work, _ = trained
    bad = tmp_path / "x_lung_mask_1.npy"
    np.save(bad, np.full((64, 64), 255, np.uint8))
    with pytest.raises(InputError, match=r"x_lung_mask_1.npy: mask values must be 0 or 1, found 255"):
        run_bundle_inference(BUNDLE, ckpt=work / "models" / "model.pt", dataset_dir=str(bad), output_dir=tmp_path)
    assert not list(tmp_path.glob("*.png"))


def test_evaluation_scores_the_test_split_and_ssim_in_the_nodule_region(trained, lung_datalist, tmp_path):
    work, _ = trained
    out = tmp_path / "eval"
    written = run_bundle_inference(
        BUNDLE,
        [bundle_configs("mask2ct_lung") / "evaluate.json"],
        ckpt=work / "models" / "model.pt",
        datalist=str(lung_datalist),
        output_dir=str(out),
    )
    test = json.loads(lung_datalist.read_text())["test"]
    assert [Path(p).name for p in written] == [f"{item['case']}_sct.png" for item in test]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["split"] == "test" and summary["value_range"] == [0.0, 255.0] and summary["n"] == len(test)
    metrics = summary["metrics"]
    assert 0 < metrics["mae"]["mean"] < 255 and metrics["psnr"]["mean"] > 0 and -1 <= metrics["ssim"]["mean"] <= 1
    nodular = [item["case"] for item in test if item["group"] == "with_nodules"]
    assert 0 < len(nodular) < len(test) and metrics["local_ssim"]["n"] == len(nodular)
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()]
    assert rows[0] == ["case", "mae", "psnr", "ssim", "bone_dice", "local_ssim"]
    assert {row[0] for row in rows[1:] if row[-1] != ""} == set(nodular)  # clean slices: no nodule SSIM
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == sorted(item["case"] for item in test)


def test_the_nodule_region_is_the_dense_part_of_a_with_nodules_mask(lung_datalist):
    test = json.loads(lung_datalist.read_text())["test"]
    item = next(it for it in test if it["group"] == "with_nodules")
    ct, _ = read_image(item["label"])
    mask, _ = read_image(item["image"])
    region = nodule_region(item, ct)
    assert region is not None and region.any()
    assert np.array_equal(region, (mask > 0) & (ct >= NODULE_THRESHOLD))
    assert nodule_region({**item, "group": "clean"}, ct) is None
    assert nodule_region(item, ct, threshold=256) is None
    with pytest.raises(InputError, match="differs from its slice"):
        nodule_region(item, ct[:-1])


def test_the_model_exports_to_torchscript(trained, tmp_path):
    """The model zoo's export (MONAI ``ckpt_export``) of the trained generator, as the docs give it."""
    from monai.bundle import ConfigParser, ckpt_export

    work, _ = trained
    model = work / "models" / "model.pt"
    network_def = json.loads(model.with_suffix(".json").read_text())["config"]["network_def"]
    configs = bundle_configs("mask2ct_lung")
    ckpt_export(
        "network_def",
        filepath=str(tmp_path / "model.ts"),
        ckpt_file=str(model),
        meta_file=str(configs / "metadata.json"),
        config_file=str(configs / "inference.json"),
        network_def=network_def,
    )
    network = ConfigParser({"network_def": network_def}).get_parsed_content("network_def")
    network.load_state_dict(torch.load(model, map_location="cpu", weights_only=True))
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(tmp_path / "model.ts")(x), network.eval()(x))
