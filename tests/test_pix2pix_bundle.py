"""pix2pix_ngf bundle end to end at tiny sizes: every training variant through ``ConfigWorkflow``, resume after an
interrupted run, inference geometry on an oblique anisotropic volume, evaluation outputs, metadata schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from custom.data.datalist import make_datalist
from custom.data.demo import make_demo_data
from custom.inference import run_bundle_inference
from custom.io import InputError, read_image, write_nifti

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "pix2pix_ngf"
CONFIGS = BUNDLE / "configs"
TINY_NETWORK = {"channels": [4, 8], "strides": [2], "num_res_units": 0}
TINY = {
    "network_def#channels": TINY_NETWORK["channels"],
    "network_def#strides": TINY_NETWORK["strides"],
    "network_def#num_res_units": 0,
    "patch_size": [48, 48],
}
TINY_TRAIN = {
    **TINY,
    "discriminator_def#channels": 4,
    "samples_per_volume": 2,
    "batch_size": 2,
    "num_workers": 0,
    "epochs": 2,
    "val_interval": 1,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pix2pix_data")
    make_demo_data(root / "data", cases=4, seed=3, shape=(48, 48, 10))
    make_datalist(root / "data", "synthrad2023", root / "datalist.json", val_fraction=0.25, test_fraction=0.25)
    return root / "datalist.json"


def train_workflow(datalist: Path, work: Path, variant: str | None = None, **overrides) -> ConfigWorkflow:
    files = [str(CONFIGS / "train.json")] + ([str(CONFIGS / variant)] if variant else [])
    settings = {**TINY_TRAIN, **overrides}
    workflow = ConfigWorkflow(
        config_file=files,
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=False,
        workflow_type="train",
        bundle_root=str(work),
        datalist=str(datalist),
        ckpt_dir=str(work / "models"),
        output_dir=str(work / "runs"),
        **settings,
    )
    workflow.initialize()
    return workflow


def tiny_bundle(tmp_path: Path, model: Path) -> Path:
    """A copy of the bundle whose inference.json has the tiny network, with ``model`` as models/model.pt."""
    bundle = tmp_path / "bundle"
    shutil.copytree(CONFIGS, bundle / "configs")
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    config["network_def"].update(TINY_NETWORK)
    config["patch_size"] = TINY["patch_size"]
    (bundle / "configs" / "inference.json").write_text(json.dumps(config, indent=4))
    (bundle / "models").mkdir()
    shutil.copy(model, bundle / "models" / "model.pt")
    return bundle


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pix2pix_train")
    workflow = train_workflow(dataset, work)
    assert not workflow.check_properties()
    workflow.run()
    workflow.finalize()
    return work


def test_train_writes_model_checkpoint_and_samples(trained):
    model = torch.load(trained / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert set(model) == {"model"}
    assert any(k.endswith("weight") for k in model["model"])
    checkpoint = torch.load(trained / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert {"generator", "discriminator", "g_optimizer", "d_optimizer", "g_lr_scheduler", "trainer"} <= set(checkpoint)
    progress = checkpoint["trainer"]
    assert progress["iteration"] == 2 * progress["epoch_length"]  # two complete epochs
    assert np.isfinite(checkpoint["best_model"]["best_value"])
    assert sorted(p.name for p in (trained / "runs" / "samples").glob("*.png")) == [
        "train_epoch0001.png",
        "train_epoch0002.png",
    ]


@pytest.mark.parametrize("variant", ["train_baseline.json", "train_hifi.json"])
def test_variants_train(dataset, tmp_path, variant):
    workflow = train_workflow(dataset, tmp_path, variant=variant, epochs=1)
    assert not workflow.check_properties()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    if variant == "train_baseline.json":
        assert trainer.lambda_ngf == 0.0
    else:
        assert trainer.mask_losses and trainer.lambda_background > 0
    workflow.run()
    assert trainer.state.epoch == 1
    assert np.isfinite(trainer.state.metrics["loss_g"])
    if variant == "train_baseline.json":
        assert trainer.state.metrics["loss_ngf"] == 0.0
    else:
        assert trainer.state.metrics["loss_bg"] > 0.0
    assert (tmp_path / "models" / "model.pt").is_file()


def test_resume_continues_epoch_optimizer_and_schedule(dataset, tmp_path):
    # reference: two uninterrupted epochs
    full = train_workflow(dataset, tmp_path / "full", epochs=4, val_interval=10)
    full_trainer = full.parser.get_parsed_content("train#trainer")
    full.run()

    # interrupted after the first epoch, then restarted by a new process-like workflow
    first = train_workflow(dataset, tmp_path / "resumed", epochs=4, val_interval=10)
    first_trainer = first.parser.get_parsed_content("train#trainer")
    first_trainer.add_event_handler(Events.EPOCH_COMPLETED(once=1), lambda engine: engine.terminate())
    first.run()
    assert first_trainer.state.epoch == 1
    iterations_per_epoch = first_trainer.state.iteration

    second = train_workflow(dataset, tmp_path / "resumed", epochs=4, val_interval=10)
    trainer = second.parser.get_parsed_content("train#trainer")
    started_at = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda engine: started_at.append(engine.state.epoch))
    second.run()
    assert started_at == [2, 3, 4]
    assert trainer.state.iteration == full_trainer.state.iteration == 4 * iterations_per_epoch
    optimizer = second.parser.get_parsed_content("g_optimizer")
    steps = {int(s["step"]) for s in optimizer.state_dict()["state"].values()}
    assert steps == {4 * iterations_per_epoch}
    schedule = second.parser.get_parsed_content("g_lr_scheduler")
    reference = full.parser.get_parsed_content("g_lr_scheduler")
    assert schedule.last_epoch == reference.last_epoch == 4
    assert schedule.get_last_lr() == pytest.approx(reference.get_last_lr())


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
def test_inference_keeps_the_input_grid(trained, dataset, tmp_path, suffix):
    case = json.loads(dataset.read_text())["test"][0]
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
    bundle = tiny_bundle(tmp_path, trained / "models" / "model.pt")

    written = run_bundle_inference(bundle, [{"image": str(mr), "mask": str(mask)}], tmp_path / "out")
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


def test_inference_refuses_to_overwrite_an_input(trained, dataset, tmp_path):
    case = json.loads(dataset.read_text())["test"][0]
    out = tmp_path / "out"
    out.mkdir()
    case_dir = tmp_path / "patient"
    case_dir.mkdir()
    mr = case_dir / "mr.nii.gz"
    shutil.copy(case["image"], mr)
    mask = out / "patient_sct.nii.gz"  # an input where the output of <patient>/mr.nii.gz would go
    shutil.copy(case["mask"], mask)
    bundle = tiny_bundle(tmp_path, trained / "models" / "model.pt")
    before = mask.read_bytes()
    with pytest.raises(InputError, match="overwrite an input"):
        run_bundle_inference(bundle, [{"image": str(mr), "mask": str(mask)}], out)
    assert mask.read_bytes() == before


def test_evaluate_writes_metrics_and_figures(trained, dataset, tmp_path):
    bundle = tiny_bundle(tmp_path, trained / "models" / "model.pt")
    workflow = ConfigWorkflow(
        config_file=[str(bundle / "configs" / "inference.json"), str(bundle / "configs" / "evaluate.json")],
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type="inference",
        bundle_root=str(bundle),
        datalist=str(dataset),
        output_dir=str(tmp_path / "eval"),
    )
    workflow.initialize()
    assert not workflow.check_properties()
    workflow.run()
    test_cases = [item["case"] for item in json.loads(dataset.read_text())["test"]]
    rows = (tmp_path / "eval" / "metrics.csv").read_text().strip().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == test_cases
    for column in ("synthrad2023_mae", "synthrad2023_ssim", "synthrad2025_ms_ssim", "bone_dice"):
        assert column in rows[0]
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["metrics"]["synthrad2023_mae"]["n"] == len(test_cases)
    assert summary["metrics"]["synthrad2023_mae"]["mean"] > 0
    assert sorted(p.stem for p in (tmp_path / "eval" / "figures").glob("*.png")) == sorted(test_cases)


def test_metadata_validates_against_the_vendored_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "schemas" / "meta_schema_20240725.json").read_text())
    metadata = json.loads((CONFIGS / "metadata.json").read_text())
    jsonschema.validate(metadata, schema)
    assert metadata["version"] in metadata["changelog"]
    assert metadata["network_data_format"]["inputs"]["image"]["modality"] == "MR"
    assert metadata["network_data_format"]["outputs"]["pred"]["format"] == "hounsfield"


@pytest.fixture(scope="module")
def png_dataset(tmp_path_factory) -> Path:
    """Three subjects of 8-bit MR/CT PNG slices, 56 wide and 48 high (non-square, to catch transposed outputs)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("pix2pix_png")
    rng = np.random.default_rng(0)
    for folder in ("MRI", "CT"):
        (root / folder).mkdir()
    yy, xx = np.mgrid[0:48, 0:56]
    for subject in range(3):
        for index in range(2):
            head = ((yy - 24) / 20) ** 2 + ((xx - 28) / 24) ** 2 <= 1
            skull = head & (((yy - 24) / 17) ** 2 + ((xx - 28) / 21) ** 2 > 1)
            ct = np.where(skull, 255, np.where(head, 90, 0)) + rng.integers(0, 5, head.shape)
            mr = np.where(skull, 20, np.where(head, 160, 0)) + rng.integers(0, 5, head.shape)
            name = f"s{subject}_{index}.png"
            Image.fromarray(np.clip(mr, 0, 255).astype(np.uint8)).save(root / "MRI" / name)
            Image.fromarray(np.clip(ct, 0, 255).astype(np.uint8)).save(root / "CT" / name)
    make_datalist(root, "paired2d", root / "datalist.json", val_fraction=0.34, subject_regex=r"^s(\d)_")
    return root / "datalist.json"


def test_png2d_variant_trains_and_infers_png(png_dataset, tmp_path):
    from PIL import Image

    workflow = train_workflow(png_dataset, tmp_path / "work", variant="train_png2d.json", epochs=1)
    assert not workflow.check_properties()
    workflow.run()
    model = tmp_path / "work" / "models" / "model.pt"
    assert model.is_file()
    bundle = tiny_bundle(tmp_path, model)
    (bundle / "models" / "png2d").mkdir()
    shutil.copy(model, bundle / "models" / "png2d" / "model.pt")
    source = json.loads(png_dataset.read_text())["validation"][0]["image"]
    written = run_bundle_inference(bundle, [{"image": source}], tmp_path / "out")
    assert [Path(p).suffix for p in written] == [".png"]
    with Image.open(written[0]) as sct, Image.open(source) as mr:
        assert sct.size == mr.size == (56, 48)
        assert sct.mode == "L"


def test_tracking_mlflow_logs_every_loss_term(dataset, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    workflow = train_workflow(dataset, tmp_path, epochs=1, tracking="mlflow")
    workflow.run()
    workflow.finalize()
    uri = workflow.parser.get_parsed_content("tracking_uri")
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs(client.search_experiments()[0].experiment_id)
    logged = set().union(*(run.data.metrics for run in runs))
    assert {"loss_g", "loss_d", "loss_l1", "loss_ngf", "val_mae"} <= logged


def test_infer_command_line(trained, dataset, tmp_path, capsys):
    from custom.__main__ import main

    case = json.loads(dataset.read_text())["test"][0]
    bundle = tiny_bundle(tmp_path, trained / "models" / "model.pt")
    with pytest.raises(SystemExit) as exit_:
        main(["infer", "--bundle", str(bundle), "--input", case["image"], "--output", str(tmp_path / "out")])
    assert exit_.value.code == 0
    written = tmp_path / "out" / f"{case['case']}_sct.nii.gz"
    assert str(written) in capsys.readouterr().out
    assert nib.load(written).shape == nib.load(case["image"]).shape

    (bundle / "models" / "model.pt").unlink()
    with pytest.raises(SystemExit) as exit_:
        main(["infer", "--bundle", str(bundle), "--input", case["image"], "--output", str(tmp_path / "out2")])
    assert exit_.value.code == 2
    assert "no trained model" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()


@pytest.mark.parametrize(
    "train_files, inference_files",
    [
        (["train.json"], ["inference.json"]),
        (["train.json", "train_png2d.json"], ["inference.json", "inference_png2d.json"]),
    ],
)
def test_inference_config_matches_training(train_files, inference_files):
    """inference.json is self-contained (MONAI Label, model zoo): what it shares with training must stay equal."""
    from monai.bundle import ConfigParser

    def merged(files):
        parser = ConfigParser()
        parser.read_config([str(CONFIGS / f) for f in files])
        return parser

    train, infer = merged(train_files), merged(inference_files)
    for key in ("network_def", "patch_size", "mr_percentiles", "ct_window", "axcodes", "eight_bit"):
        assert train[key] == infer[key], key
    assert train["generator"] == infer["network"]  # the same tanh-capped UNet
