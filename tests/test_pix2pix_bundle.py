"""pix2pix_ngf specifics at tiny sizes: the training variants, resume after an interrupted run, inference geometry on
an oblique anisotropic volume, the overwrite guard, the 2D PNG variant and MLflow tracking. What every bundle must do
is in ``test_bundles.py``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import ROOT, train_workflow
from ignite.engine import Events

from custom.errors import InputError
from custom.images import read_image
from custom.inference import run_bundle_inference
from custom.outputs import write_nifti

BUNDLE = ROOT / "bundles" / "pix2pix_ngf"


def pix2pix(datalist: Path, work: Path, *variants: str, **overrides):
    return train_workflow("pix2pix_ngf", datalist, work, variants, **overrides)


@pytest.fixture(scope="module")
def trained(heads_datalist, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pix2pix_train")
    workflow = pix2pix(heads_datalist, work)
    workflow.run()
    workflow.finalize()
    return work / "models" / "model.pt"


@pytest.mark.parametrize("variant", ["train_baseline.json", "train_hifi.json"])
def test_variants_train(heads_datalist, tmp_path, variant):
    workflow = pix2pix(heads_datalist, tmp_path, variant, epochs=1)
    assert not workflow.check_properties()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    terms = trainer.g_losses.terms
    if variant == "train_baseline.json":
        assert terms["ngf"].weight == 0.0
    else:
        assert terms["l1"].region == terms["ngf"].region == "mask" and terms["bg"].weight > 0
    workflow.run()
    assert trainer.state.epoch == 1
    assert np.isfinite(trainer.state.metrics["loss_g"])
    if variant == "train_baseline.json":
        assert trainer.state.metrics["loss_ngf"] == 0.0
    else:
        assert trainer.state.metrics["loss_bg"] > 0.0
    assert (tmp_path / "models" / "model.pt").is_file()


def test_resume_continues_epoch_optimizer_and_schedule(heads_datalist, tmp_path):
    # reference: two uninterrupted epochs
    full = pix2pix(heads_datalist, tmp_path / "full", epochs=4, val_interval=10)
    full_trainer = full.parser.get_parsed_content("train#trainer")
    full.run()

    # interrupted after the first epoch, then restarted by a new process-like workflow
    first = pix2pix(heads_datalist, tmp_path / "resumed", epochs=4, val_interval=10)
    first_trainer = first.parser.get_parsed_content("train#trainer")
    first_trainer.add_event_handler(Events.EPOCH_COMPLETED(once=1), lambda engine: engine.terminate())
    first.run()
    assert first_trainer.state.epoch == 1
    iterations_per_epoch = first_trainer.state.iteration

    second = pix2pix(heads_datalist, tmp_path / "resumed", epochs=4, val_interval=10)
    trainer = second.parser.get_parsed_content("train#trainer")
    started_at = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda engine: started_at.append(engine.state.epoch))
    second.run()
    assert started_at == [2, 3, 4]
    assert trainer.state.iteration == full_trainer.state.iteration == 4 * iterations_per_epoch
    optimizer = second.parser.get_parsed_content("gan#g_optimizer")
    steps = {int(s["step"]) for s in optimizer.state_dict()["state"].values()}
    assert steps == {4 * iterations_per_epoch}
    schedule = second.parser.get_parsed_content("gan#g_lr_scheduler")
    reference = full.parser.get_parsed_content("gan#g_lr_scheduler")
    assert schedule.last_epoch == reference.last_epoch == 4
    assert schedule.get_last_lr() == pytest.approx(reference.get_last_lr())


def test_validation_and_model_pt_use_the_generator_weight_average(heads_datalist, tmp_path):
    workflow = pix2pix(heads_datalist, tmp_path, epochs=1, val_interval=1, ema_momentum=0.3)
    average = workflow.parser.get_parsed_content("generator_average")
    generator = workflow.parser.get_parsed_content("gan#generator")
    assert average.momentum == 0.3  # a setting, like any other
    assert workflow.parser.get_parsed_content("validate#evaluator").network is average.ema_model
    workflow.run()
    saved = torch.load(tmp_path / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert saved.keys() == average.ema_model.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in average.ema_model.state_dict().items())
    trained_weights = generator.state_dict()
    assert any(not torch.equal(saved[k], trained_weights[k]) for k in saved), "model.pt holds the last weights"
    resumable = torch.load(tmp_path / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert all(torch.equal(resumable["generator_average"][k], v) for k, v in saved.items())


def oblique_flipped_mr(source: Path, out: Path) -> tuple[Path, np.ndarray]:
    """The source MR stored with a reversed first axis and swapped in-plane axes: an LPS-like oblique grid."""
    array, affine = read_image(source)
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, array.shape[0] - 1
    swap = np.eye(4)[[1, 0, 2, 3]]
    new_affine = affine @ flip @ swap
    new_array = np.transpose(array[::-1], (1, 0, 2))
    write_nifti(new_array, new_affine, out, dtype=np.int16)
    return out, new_affine


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha"])
def test_inference_keeps_the_input_grid(trained, heads_datalist, tmp_path, suffix):
    case = json.loads(heads_datalist.read_text())["test"][0]
    mr, affine = oblique_flipped_mr(Path(case["image"]), tmp_path / "in" / "patient_mr.nii.gz")
    if suffix == ".mha":  # the same volume as MetaImage (read through ITK, LPS on disk)
        import itk

        itk.imwrite(itk.imread(str(mr)), str(tmp_path / "in" / "patient_mr.mha"))
        mr.unlink()
        mr = tmp_path / "in" / "patient_mr.mha"
    mask_array, _ = read_image(case["mask"])
    mask = tmp_path / "in" / "patient_mask.nii.gz"
    write_nifti(np.transpose(mask_array[::-1], (1, 0, 2)), affine, mask, dtype=np.uint8)
    assert not np.allclose(np.abs(affine[:3, :3]), np.diag(np.abs(np.diag(affine[:3, :3]))))  # oblique
    written = run_bundle_inference(
        BUNDLE, ckpt=trained, dataset_dir=str(mr), mask_file=str(mask), output_dir=str(tmp_path / "out")
    )
    assert [Path(p).name for p in written] == ["patient_mr_sct.nii.gz"]
    assert Path(written[0]).is_file()
    sct = nib.load(written[0])
    source_array, source_affine = read_image(mr)
    assert sct.shape == source_array.shape
    np.testing.assert_allclose(sct.affine, source_affine, atol=1e-4)
    np.testing.assert_allclose(source_affine, affine, atol=1e-4)
    assert nib.aff2axcodes(sct.affine) == nib.aff2axcodes(affine)
    assert sct.get_data_dtype() == np.int16
    values = np.asarray(sct.dataobj)
    outside = np.asarray(nib.load(mask).dataobj) == 0
    assert np.all(values[outside] == -1024)
    assert values.min() >= -1024 and values.max() <= 3071
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind


def test_inference_refuses_to_overwrite_an_input(trained, heads_datalist, tmp_path):
    case = json.loads(heads_datalist.read_text())["test"][0]
    out = tmp_path / "out"
    out.mkdir()
    case_dir = tmp_path / "patient"
    case_dir.mkdir()
    mr = case_dir / "mr.nii.gz"
    shutil.copy(case["image"], mr)
    mask = out / "patient_sct.nii.gz"  # an input where the output of <patient>/mr.nii.gz would go
    shutil.copy(case["mask"], mask)
    before = mask.read_bytes()
    with pytest.raises(InputError, match="would overwrite the input"):
        run_bundle_inference(BUNDLE, ckpt=trained, dataset_dir=str(mr), mask_file=str(mask), output_dir=str(out))
    assert mask.read_bytes() == before


def test_png2d_variant_trains_and_infers_png(png_datalist, tmp_path):
    from PIL import Image

    workflow = pix2pix(png_datalist, tmp_path / "work", "train_png2d.json", epochs=1)
    assert not workflow.check_properties()
    # the bone term's threshold is the 8-bit bone level (250 of 255) in the network's [-1, 1]
    assert workflow.parser.get_parsed_content("bone_loss").threshold == pytest.approx(250 / 255 * 2 - 1)
    workflow.run()
    assert 0.0 <= workflow.parser.get_parsed_content("train#trainer").state.metrics["loss_bone"] <= 1.0
    model = tmp_path / "work" / "models" / "model.pt"
    assert model.is_file()
    source = json.loads(png_datalist.read_text())["validation"][0]["image"]
    # the PNG override is chosen by the input's format (inference.json's format_configs)
    written = run_bundle_inference(BUNDLE, ckpt=model, dataset_dir=source, output_dir=str(tmp_path / "out"))
    assert [Path(p).suffix for p in written] == [".png"]
    with Image.open(written[0]) as sct, Image.open(source) as mr:
        assert sct.size == mr.size == (56, 48)
        assert sct.mode == "L"


def test_bone_term_is_the_ct_bone_level_in_the_network_range(heads_datalist, tmp_path):
    """``bone_threshold`` is in the CT's units (HU here): -1024..3071 HU maps to [-1, 1]."""
    workflow = pix2pix(heads_datalist, tmp_path, epochs=1, bone_threshold=300, bone_temperature=0.05)
    trainer = workflow.parser.get_parsed_content("train#trainer")
    term = trainer.g_losses.terms["bone"]
    assert term.weight == workflow.parser.get_parsed_content("lambda_bone") > 0
    assert term.loss.threshold == pytest.approx((300 + 1024) / 4095 * 2 - 1)
    assert term.loss.temperature == 0.05


def test_tracking_mlflow_logs_every_loss_term(heads_datalist, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    workflow = pix2pix(heads_datalist, tmp_path, epochs=1, tracking="mlflow")
    workflow.run()
    workflow.finalize()
    uri = workflow.parser.get_parsed_content("tracking_uri")
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs(client.search_experiments()[0].experiment_id)
    logged = set().union(*(run.data.metrics for run in runs))
    assert {"loss_g", "loss_d", "loss_l1", "loss_ngf", "loss_bone", "val_mae"} <= logged


def test_an_ssim_term_is_configuration(heads_datalist, tmp_path):
    """A new generator loss term from the command line or an override file: no Python."""
    ssim = {"loss": "$monai.losses.SSIMLoss(spatial_dims=2, data_range=2.0)", "weight": 5.0}
    terms = {"generator_losses#ssim": ssim, "lambda_ngf": 0.0, "lambda_bone": 0.0}
    workflow = pix2pix(heads_datalist, tmp_path, epochs=1, **terms)
    workflow.run()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    metrics = trainer.state.metrics
    assert 0 < metrics["loss_ssim"] < 2 and metrics["loss_ngf"] == 0.0
    out = trainer.state.output[0]
    assert out["loss_g"] == pytest.approx(out["loss_adv"] + 100 * out["loss_l1"] + 5 * out["loss_ssim"], rel=1e-5)


def test_2p5d_variant_trains_on_slabs_and_infers_volumes(heads_datalist, tmp_path):
    workflow = pix2pix(heads_datalist, tmp_path / "work", "train_2p5d.json", epochs=1)
    assert not workflow.check_properties()
    generator = workflow.parser.get_parsed_content("gan#generator")
    generator = getattr(generator, "module", generator)
    assert type(generator).__name__ == "SliceContextGenerator" and generator.context == 1
    sample = workflow.parser.get_parsed_content("train#dataset")[0][0]
    assert sample["image"].shape[0] == 3 and sample["label"].shape[0] == 1  # 3 slices in, the centre slice out
    workflow.run()
    model = tmp_path / "work" / "models" / "model.pt"
    assert json.loads(model.with_suffix(".json").read_text())["config"]["network_def"]["context"] == 1
    case = json.loads(heads_datalist.read_text())["test"][0]
    # no extra config: inference.json chooses the volume inferer for a 2.5D network
    (written,) = run_bundle_inference(BUNDLE, ckpt=model, dataset_dir=case["image"], output_dir=str(tmp_path / "out"))
    sct, mr = nib.load(written), nib.load(case["image"])
    assert sct.shape == mr.shape and np.allclose(sct.affine, mr.affine) and sct.get_data_dtype() == np.int16


def _second_member(trained: Path, folder: Path) -> Path:
    """Another model of the same recipe: ``trained``'s weights slightly perturbed, its record copied."""
    folder.mkdir(parents=True)
    state = torch.load(trained, weights_only=True)
    state = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, folder / "model.pt")
    shutil.copy(trained.with_suffix(".json"), folder / "model.json")
    return folder / "model.pt"


def test_ensemble_tta_and_uncertainty_through_the_command_line(trained, heads_datalist, tmp_path, capsys):
    from custom.cli import main

    members = tmp_path / "members"
    shutil.copytree(trained.parent, members / "member_0")
    torch.manual_seed(0)
    _second_member(trained, members / "member_1")
    case = json.loads(heads_datalist.read_text())["test"][0]
    out = tmp_path / "out"
    args = ["infer", str(BUNDLE), case["image"], str(out), "--mask", case["mask"], "--ckpt", str(members)]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--tta", "flip", "--uncertainty"])
    assert exit_.value.code == 0, capsys.readouterr().err
    name = Path(capsys.readouterr().out.split()[-1]).name.removesuffix("_sct.nii.gz")  # the case, as printed
    sct, std = nib.load(out / f"{name}_sct.nii.gz"), nib.load(out / f"{name}_sct_std.nii.gz")
    mr, mask = nib.load(case["image"]), np.asarray(nib.load(case["mask"]).dataobj) > 0
    assert sct.get_data_dtype() == np.int16 and std.get_data_dtype() == np.float32
    for written in (sct, std):
        assert written.shape == mr.shape
        np.testing.assert_allclose(written.affine, mr.affine, atol=1e-4)
    spread = np.asarray(std.dataobj)
    assert np.all(spread[~mask] == 0) and spread[mask].mean() > 1.0  # HU; members differ inside the body
    assert np.all(spread >= 0)
    # an ensemble of the same model twice, without flips: the single model's sCT and no spread
    single = run_bundle_inference(BUNDLE, ckpt=trained, dataset_dir=case["image"], output_dir=str(tmp_path / "one"))
    twice = run_bundle_inference(
        BUNDLE,
        ckpt=trained,
        ensemble_ckpts=(str(members / "member_0" / "model.pt"),),
        uncertainty=True,
        dataset_dir=case["image"],
        output_dir=str(tmp_path / "twice"),
    )
    np.testing.assert_array_equal(nib.load(single[0]).get_fdata(), nib.load(twice[0]).get_fdata())
    assert np.count_nonzero(nib.load(twice[0].replace("_sct.nii.gz", "_sct_std.nii.gz")).get_fdata()) == 0


def test_ensemble_members_must_share_their_recipe(trained, heads_datalist, tmp_path):
    other = _second_member(trained, tmp_path / "other")
    record = json.loads(other.with_suffix(".json").read_text())
    record["config"]["ct_window"] = [-1000, 2000]
    other.with_suffix(".json").write_text(json.dumps(record))
    case = json.loads(heads_datalist.read_text())["test"][0]
    with pytest.raises(InputError, match="differs from .* in ct_window"):
        run_bundle_inference(
            BUNDLE,
            ckpt=trained,
            ensemble_ckpts=(str(other),),
            dataset_dir=case["image"],
            output_dir=str(tmp_path / "o"),
        )
    assert not (tmp_path / "o").exists()
