"""Every bundle under ``bundles/``, at tiny sizes: train through ``ConfigWorkflow``, a self-describing model that loads
strictly into ``network_def``, inference with no config, evaluation (also without a test split), metadata, and the
inference configs agreeing with training. A new bundle is tested by being added (plus ``tests/tiny/<bundle>.json``),
on the data its tiny settings name (``conftest.bundle_data``: head volumes by default, or lung mask slices)."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import BUNDLES, ROOT, bundle_configs, bundle_data, tiny_overrides, train_workflow
from monai.bundle import ConfigParser

from custom.bundles import flat_config, flat_configs
from custom.errors import InputError
from custom.inference import bundle_workflow, run_bundle_inference
from custom.model_record import model_config_path


@pytest.fixture(scope="module", params=BUNDLES)
def trained(request, tmp_path_factory) -> tuple[str, Path]:
    """(bundle, work folder) after two tiny training epochs on the bundle's test data."""
    work = tmp_path_factory.mktemp(f"train_{request.param}")
    workflow = train_workflow(request.param, datalist_of(request), work)
    assert not workflow.check_properties()
    workflow.run()
    workflow.finalize()
    return request.param, work


def datalist_of(request: pytest.FixtureRequest, bundle: str | None = None) -> Path:
    """The datalist of the data the bundle (default: the test's parameter) is tested on."""
    return request.getfixturevalue(bundle_data(bundle or request.param).fixture)


def sample_grid_epochs(bundle: str) -> list[int]:
    """The epochs of the tiny run after which the bundle's training ``SampleGridSaver`` writes a figure (its
    ``every``; every epoch when the config names no such handler)."""
    parser = ConfigParser(flat_config(bundle_configs(bundle) / "train.json"))
    parser.update(tiny_overrides(bundle))
    every = 1
    for i, handler in enumerate(parser["train"]["handlers"]):
        if isinstance(handler, dict) and str(handler.get("_target_", "")).endswith("SampleGridSaver"):
            every = parser.get_parsed_content(f"train#handlers#{i}#every") if "every" in handler else 1
    return [epoch for epoch in range(1, parser.get_parsed_content("epochs") + 1) if epoch % every == 0]


def test_training_writes_a_self_describing_model(trained, request):
    bundle, work = trained
    datalist = datalist_of(request, bundle)
    model = work / "models" / "model.pt"
    state = torch.load(model, map_location="cpu", weights_only=True)
    record = json.loads(model_config_path(model).read_text())
    assert record["best"]["metric"] == "val_mae" and np.isfinite(record["best"]["value"])
    # the record rebuilds the trained network; its weights load strictly (MONAI Label, zoo, ckpt_export)
    network = ConfigParser({"network_def": record["config"]["network_def"]}).get_parsed_content("network_def")
    network.load_state_dict(state, strict=True)
    # ... and so does the bundle's own inference network_def with the record applied (as `custom infer` does)
    workflow, _ = bundle_workflow(ROOT / "bundles" / bundle, ckpt=model, datalist=str(datalist))
    workflow.parser.get_parsed_content("network_def").load_state_dict(state, strict=True)
    checkpoint = torch.load(work / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert checkpoint["trainer"]["iteration"] == 2 * checkpoint["trainer"]["epoch_length"]  # two complete epochs
    assert sorted(p.name for p in (work / "runs" / "samples").glob("*.png")) == [
        f"train_epoch{epoch:04d}.png" for epoch in sample_grid_epochs(bundle)
    ]
    if bundle_data(bundle).fixture == "heads_datalist":
        assert sample_grid_epochs(bundle) == [1, 2]


def test_custom_infer_needs_no_config(trained, request, tmp_path, capsys):
    from custom.cli import main

    bundle, work = trained
    case = json.loads(datalist_of(request, bundle).read_text())["test"][0]
    args = ["infer", "--bundle", str(ROOT / "bundles" / bundle), "--ckpt", str(work / "models" / "model.pt")]
    with pytest.raises(SystemExit) as exit_:
        main(args + ["--input", case["image"], "--output", str(tmp_path / "out")])
    assert exit_.value.code == 0
    written = tmp_path / "out" / f"{case['case']}_sct{bundle_data(bundle).output_ext}"
    assert str(written) in capsys.readouterr().out
    bundle_data(bundle).check_output(written, case["image"])


def test_ensemble_flips_and_uncertainty_keep_the_output_grid(trained, request, tmp_path):
    """Every bundle: two members (the model twice) x left-right flips give the sCT as before and an uncertainty map,
    float32, on the input's grid; the members agree, so the spread is the flips' alone (not all zero)."""
    from custom.images import read_image

    bundle, work = trained
    case = json.loads(datalist_of(request, bundle).read_text())["test"][0]
    model = work / "models" / "model.pt"
    written = run_bundle_inference(
        ROOT / "bundles" / bundle,
        ckpt=model,
        ensemble_ckpts=(str(model),),
        tta="flip",
        uncertainty=True,
        dataset_dir=case["image"],
        output_dir=str(tmp_path / "out"),
    )
    bundle_data(bundle).check_output(Path(written[0]), case["image"])
    spread_file = tmp_path / "out" / f"{case['case']}_sct_std.nii.gz"
    spread, _ = read_image(spread_file)
    sct, _ = read_image(written[0])
    assert nib.load(spread_file).get_data_dtype() == np.float32
    assert spread.shape == sct.shape and np.all(spread >= 0) and np.isfinite(spread).all() and spread.max() > 0


def test_a_model_that_does_not_fit_is_one_clear_error(trained, request, tmp_path):
    bundle, work = trained
    model = tmp_path / "model.pt"
    shutil.copy(work / "models" / "model.pt", model)  # without its record: the bundle's (bigger) default network
    case = json.loads(datalist_of(request, bundle).read_text())["test"][0]
    with pytest.raises(InputError, match=r"model.pt: the weights do not fit the config's network_def \(.*shape"):
        run_bundle_inference(ROOT / "bundles" / bundle, ckpt=model, dataset_dir=case["image"], output_dir=tmp_path)
    assert not list(tmp_path.glob("*_sct*"))


def test_evaluate_json_without_a_test_split(trained, request, tmp_path):
    """evaluate.json scores the validation split when the datalist has no test cases (the default split rule)."""
    bundle, work = trained
    data = json.loads(datalist_of(request, bundle).read_text())
    data["test"] = []
    datalist = tmp_path / "no_test.json"
    datalist.write_text(json.dumps(data))
    configs = [bundle_configs(bundle) / "evaluate.json"]
    out = tmp_path / "eval"
    written = run_bundle_inference(
        ROOT / "bundles" / bundle, configs, ckpt=work / "models" / "model.pt", datalist=str(datalist), output_dir=out
    )
    cases = [item["case"] for item in data["validation"]]
    assert [Path(p).name for p in written] == [f"{c}_sct{bundle_data(bundle).output_ext}" for c in cases]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["split"] == "validation" and summary["n"] == len(cases)
    assert summary["metrics"][bundle_data(bundle).mae_metric]["mean"] > 0
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == cases
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == sorted(cases)


# bf16 vs fp32: the bound the bundles' docs state for mean |ΔHU| inside the body (8-bit outputs scaled to HU). The
# tiny two-epoch models here measure 1-16 HU; the trained demo model of pix2pix_ngf 2.7-2.9 HU (docs).
BF16_MEAN_ABS_HU = 25.0


def _read_output(path: Path) -> np.ndarray:
    if path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            return np.asarray(image, dtype=np.float64) * 4095.0 / 255.0  # grey levels → HU-like scale
    import nibabel as nib

    return np.asarray(nib.load(path).dataobj, dtype=np.float64)


def test_bf16_inference_agrees_with_fp32(trained, request, tmp_path):
    """``--precision bf16`` (the weights and activations in bfloat16, output in fp32) writes nearly the fp32 sCT; the
    network as inference prepares it (group norm, channels-last) is the trained network."""
    bundle, work = trained
    case = json.loads(datalist_of(request, bundle).read_text())["test"][0]
    outputs = {}
    for precision in ("fp32", "bf16"):
        (written,) = run_bundle_inference(
            ROOT / "bundles" / bundle,
            ckpt=work / "models" / "model.pt",
            dataset_dir=case["image"],
            mask_file=case.get("mask"),
            output_dir=tmp_path / precision,
            precision=precision,
        )
        bundle_data(bundle).check_output(Path(written), case["image"])
        outputs[precision] = _read_output(Path(written))
    difference = np.abs(outputs["bf16"] - outputs["fp32"])
    inside = _read_output(Path(case["mask"])) > 0 if case.get("mask") else np.ones(difference.shape, bool)
    assert difference[inside].mean() <= BF16_MEAN_ABS_HU
    assert outputs["bf16"].std() > 0  # not a constant image that would agree trivially


def test_background_io_writes_the_same_outputs(trained, request, tmp_path):
    """``--background_io true`` (read ahead in a thread, write in the background) writes the same outputs as the
    default sequential path, and they are complete when the run returns."""
    bundle, work = trained
    datalist = datalist_of(request, bundle)
    outputs = {}
    for background in (False, True):
        written = run_bundle_inference(
            ROOT / "bundles" / bundle,
            ckpt=work / "models" / "model.pt",
            datalist=str(datalist),
            split="validation",
            output_dir=tmp_path / str(background),
            background_io=background,
        )
        outputs[background] = [_read_output(Path(p)) for p in written]
    assert len(outputs[True]) == len(outputs[False]) > 0
    for sequential, background in zip(outputs[False], outputs[True]):
        np.testing.assert_array_equal(background, sequential)


def test_zoo_evaluation_scores_the_trained_model(trained, request):
    """The model zoo's evaluation, `monai.bundle run --config_file "['configs/train.json','configs/evaluate.json']"`,
    trains nothing: it loads the trained model (strictly) into train.json's validation and writes its metrics, and the
    MAE is the one training recorded for that model."""
    bundle, work = trained
    models = work / "models"
    before = {p.name: p.read_bytes() for p in models.iterdir()}
    workflow = train_workflow(bundle, datalist_of(request, bundle), work, variants=("evaluate.json",))
    workflow.run()
    workflow.finalize()
    assert {p.name: p.read_bytes() for p in models.iterdir()} == before  # no training step, no checkpoint written
    metrics = dict(line.split(",") for line in (work / "runs" / "metrics.csv").read_text().splitlines())
    recorded = json.loads(model_config_path(models / "model.pt").read_text())["best"]["value"]
    assert float(metrics["val_mae"]) == pytest.approx(recorded, rel=1e-5)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_evaluate_json_keeps_the_inference_handlers(bundle):
    """evaluate.json replaces inference.json's `handlers` (a `+handlers` merge would leave a stray `handlers` in the
    zoo's train.json + evaluate.json): it must keep them, then add the scoring."""
    inference = flat_config(bundle_configs(bundle) / "inference.json")
    evaluate = flat_config(bundle_configs(bundle) / "evaluate.json")
    assert evaluate["handlers"][: len(inference["handlers"])] == inference["handlers"]
    assert evaluate["handlers"][-1]["_target_"] == "custom.handlers.SCTEvaluationHandler"
    assert evaluate["run"] == inference["run"] == ["$@evaluator.run()"]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_validates_against_the_vendored_schema(bundle):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "schemas" / "meta_schema_20240725.json").read_text())
    metadata = flat_config(bundle_configs(bundle) / "metadata.json")  # as the zip holds it
    jsonschema.validate(metadata, schema)
    assert metadata["version"] in metadata["changelog"]
    assert metadata["network_data_format"]["outputs"]["pred"]["format"] == bundle_data(bundle).output_format
    assert all(v["type"] == "image" for v in metadata["network_data_format"]["inputs"].values())  # the zoo's usage
    assert (ROOT / "bundles" / bundle / "docs" / "data_license.txt").is_file()  # the zoo's layout


# imported by `custom` only for tools outside the bundles' configs: the command line itself, DICOM conversion and the
# dose engine of `dose-eval` (the optional extra `dose`)
TOOL_ONLY_IMPORTS = {"fire", "itk", "pyRadPlan", "SimpleITK"}


def _imports_of_custom() -> set[str]:
    """Top-level names of the third-party modules `custom` imports anywhere (module level or inside functions)."""
    names: set[str] = set()
    for path in (ROOT / "custom").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name not in ("custom", "__future__")}


def test_required_packages_are_one_environment_and_cover_custom():
    """The zoo installs `monai==`, `torch==`, `numpy==` and each `required_packages_version` pin of a bundle: all the
    bundles share one environment (same versions), and the pins name every package `custom` imports for the configs.
    That these versions install together on Python 3.10-3.13 was checked with `pip install --dry-run
    --only-binary=:all: --python-version 3.1x` (needs the package index, so not here)."""
    metadata = {b: flat_config(bundle_configs(b) / "metadata.json") for b in BUNDLES}
    assert len({(m["monai_version"], m["pytorch_version"], m["numpy_version"]) for m in metadata.values()}) == 1
    versions: dict[str, str] = {}
    for bundle, meta in metadata.items():
        for name, version in meta["required_packages_version"].items():
            assert versions.setdefault(name, version) == version, f"{bundle}: {name} {version} vs {versions[name]}"
    distributions = importlib.metadata.packages_distributions()
    modules = _imports_of_custom() - TOOL_ONLY_IMPORTS - {"monai", "torch", "numpy"}
    needed = {distributions[module][0].lower().replace("_", "-") for module in modules}
    for bundle, meta in metadata.items():
        missing = needed - set(meta["required_packages_version"])
        assert not missing, f"{bundle}: required_packages_version lacks {sorted(missing)}"


def _pairs(bundle: str) -> list[tuple[list[str], list[str]]]:
    """(training configs, inference configs) that must agree: the defaults, and each format override of
    inference.json with the training override of the same name (``inference_png2d.json`` <-> ``train_png2d.json``)."""
    configs = bundle_configs(bundle)
    pairs = [(["train.json"], ["inference.json"])]
    formats = flat_config(configs / "inference.json").get("format_configs") or {}
    for name in formats.values():
        pairs.append((["train.json", name.replace("inference", "train", 1)], ["inference.json", name]))
    return pairs


@pytest.mark.parametrize("bundle", BUNDLES)
def test_inference_config_matches_training(bundle):
    """inference.json is self-contained (MONAI Label, model zoo): what it shares with training must stay equal, and
    training records exactly those settings beside the model."""
    for train_files, inference_files in _pairs(bundle):
        parsers = []
        for files in (train_files, inference_files):
            parsers.append(ConfigParser(flat_configs([bundle_configs(bundle) / f for f in files])))
        train, infer = parsers
        recorded = train["model_record"]
        assert set(recorded) >= bundle_data(bundle).record_keys
        for key in recorded:
            assert train[key] == infer[key], (train_files, key)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_monai_run_overrides_one_network_setting_of_inference_json(bundle, monkeypatch):
    """`python -m monai.bundle run --config_file .../inference.json --network_def#<key> <value>` (and `onnx_export`,
    `ckpt_export` with the same override) sets that one setting: MONAI's parser cannot set a key inside a value that
    is a whole `%` macro, so inference.json takes train.json's network settings one by one."""
    monkeypatch.chdir(ROOT)  # the configs' macros name their files from the repository root
    trained = flat_config(bundle_configs(bundle) / "train.json")["network_def"]
    key = next(k for k in trained if k != "_target_")
    parser = ConfigParser()
    parser.read_config(str(bundle_configs(bundle) / "inference.json"))
    parser.update({f"network_def#{key}": "changed"})
    parser.parse()
    network_def = parser.get_parsed_content("network_def", instantiate=False).get_config()
    expected = dict(trained, **{key: "changed"})
    assert network_def == expected


# SwinUNETR cannot be compiled by torch.jit.script (keyword-only arguments): its TorchScript is traced
TRACED_ONLY = {"swin_pix2pix_3d"}
# exports agree with PyTorch to 1e-4 of the [-1, 1] output range, 0.2 HU of the CT window: below the 1 HU rounding
EXPORT_ATOL = 1e-4


def _second_shape(shape: list[int], dynamic: list[int]) -> list[int]:
    """Another input shape the export must accept: each dynamic axis changed (batch 2, in-plane sizes + 32 / + 64)."""
    grown = list(shape)
    for axis in dynamic:
        grown[axis] = 2 if axis == 0 else shape[axis] + 32 * axis
    return grown


def test_exports_match_pytorch(trained, tmp_path):
    """`verify_net_in_out network_def`, `ckpt_export network_def` (TorchScript) and `onnx_export` with the bundle's
    `configs/onnx_export.json` (dynamic axes) run on the trained model, and both exports give the output of the
    checkpoint loaded strictly into `network_def`, on the export shape and on a shape differing in every dynamic
    axis."""
    ort = pytest.importorskip("onnxruntime")
    from monai.bundle import ckpt_export, onnx_export, verify_net_in_out

    bundle, work = trained
    model, configs = work / "models" / "model.pt", bundle_configs(bundle)
    record = tmp_path / "record.json"
    record.write_text(json.dumps(json.loads(model_config_path(model).read_text())["config"]))
    files = {"meta_file": str(configs / "metadata.json"), "config_file": [str(configs / "inference.json"), str(record)]}
    verify_net_in_out("network_def", **files)

    parser = ConfigParser()
    parser.read_config(files["config_file"])
    network = parser.get_parsed_content("network_def").eval()
    network.load_state_dict(torch.load(model, weights_only=True), strict=True)
    args = json.loads((configs / "onnx_export.json").read_text())
    shape, dynamic = args["input_shape"], args["converter_kwargs"]["dynamic_axes"]["image"]
    if bundle in TRACED_ONLY:  # its fixed size traced at the tiny patch: the same graph, a third of the time
        shape = shape[:2] + tiny_overrides(bundle)["patch_size"]
    assert args["converter_kwargs"]["dynamic_axes"]["pred"] == dynamic

    traced = bundle in TRACED_ONLY
    ckpt_export("network_def", filepath=str(tmp_path / "model.ts"), ckpt_file=str(model), use_trace=traced,
                input_shape=shape if traced else None, **files)  # fmt: skip
    onnx_export(args_file=str(configs / "onnx_export.json"), filepath=str(tmp_path / "model.onnx"),
                ckpt_file=str(model), input_shape=shape, **files)  # fmt: skip
    torchscript = torch.jit.load(tmp_path / "model.ts")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    for sample_shape in (shape, _second_shape(shape, dynamic)):
        sample = torch.rand(sample_shape) * 2 - 1
        with torch.no_grad():
            expected = network(sample)
            torch.testing.assert_close(torchscript(sample), expected, rtol=0, atol=EXPORT_ATOL)
        (onnx_out,) = session.run(None, {"image": sample.numpy()})
        torch.testing.assert_close(torch.from_numpy(onnx_out), expected, rtol=0, atol=EXPORT_ATOL)


def _fresh_python(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """A new Python process in ``cwd`` with no PYTHONPATH: ``custom`` comes from ``cwd`` (the unzipped bundle)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, encoding="utf-8", errors="replace", timeout=600
    )


def _fresh_pythons(commands: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess]:
    """:func:`_fresh_python` of several commands at once (in parallel), their results in order."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    started = [
        subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         encoding="utf-8", errors="replace")
        for args in commands
    ]  # fmt: skip
    results = []
    for process in started:
        stdout, stderr = process.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


def _package_script():
    """``scripts/package.py`` as a module (`make package` runs it as a script)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("package_script", ROOT / "scripts" / "package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packaged_bundle_runs_without_the_repository(trained, request, tmp_path):
    """`make package`'s zip unzips into one folder named after the bundle, which runs inference and the zoo's
    evaluation from inside it (the zoo's way) with its own copy of `custom`, and whose model exports to TorchScript
    with MONAI's `ckpt_export`."""
    bundle, work = trained
    model = str(work / "models" / "model.pt")
    assert _package_script().main(["--bundle", bundle, "--model", model, "--out", str(tmp_path)]) == 0
    (archive,) = tmp_path.glob(f"{bundle}_v*.zip")
    with zipfile.ZipFile(archive) as z:
        assert {name.split("/")[0] for name in z.namelist()} == {bundle}
        z.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / bundle
    for part in ("configs/metadata.json", "configs/inference.json", "LICENSE", "docs/data_license.txt",
                 "models/model.pt", "models/model.json", "large_files.yml", "custom/__init__.py"):  # fmt: skip
        assert (folder / part).is_file(), part
    # where a fresh Python in the folder finds `custom` (found, not imported: a start-up saved)
    where = _fresh_python(["-c", "import importlib.util; print(importlib.util.find_spec('custom').origin)"], folder)
    assert Path(where.stdout.strip()).resolve() == (folder / "custom" / "__init__.py").resolve()

    # the zipped inference.json holds the trained (tiny) model's own settings: it runs the shipped model as it is
    record = json.loads((folder / "models" / "model.json").read_text())["config"]
    parser = ConfigParser()
    parser.read_config(str(folder / "configs" / "inference.json"))
    assert all(parser[key] == value for key, value in record.items())
    configs = "configs/inference.json"
    case = json.loads(datalist_of(request, bundle).read_text())["test"][0]
    out = tmp_path / "out"
    run = ["-m", "monai.bundle", "run", "--config_file", configs, "--dataset_dir", case["image"]]
    run += ["--output_dir", str(out)]
    # ... and so does the zipped train.json: the zoo's evaluation from inside the folder scores the shipped model
    zoo_configs = json.dumps(["configs/train.json", "configs/evaluate.json"])
    evaluation = ["-m", "monai.bundle", "run", "--config_file", zoo_configs, "--meta_file", "configs/metadata.json"]
    evaluation += ["--datalist", str(datalist_of(request, bundle)), "--output_dir", str(tmp_path / "zoo_eval")]
    shape = [1, 1, *parser.get_parsed_content("patch_size" if "patch_size" in parser else "image_size")]
    export = ["-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", "models/model.ts"]
    export += ["--ckpt_file", "models/model.pt", "--meta_file", "configs/metadata.json", "--config_file", configs]
    export += ["--use_trace", "True", "--input_shape", json.dumps(shape)]
    for result in _fresh_pythons([run, evaluation, export], folder):  # side by side: each is mostly start-up
        assert result.returncode == 0, result.stderr[-4000:]
    bundle_data(bundle).check_output(out / f"{case['case']}_sct{bundle_data(bundle).output_ext}", case["image"])
    assert "val_mae" in (tmp_path / "zoo_eval" / "metrics.csv").read_text()

    # the shared pair model.pt + model.json, as a user who downloaded them runs it with `custom infer`: the record
    # passes the checks of custom.model_record (its classes are on the allow-list) and rebuilds the network
    shared = tmp_path / "shared"
    run_bundle_inference(folder, ckpt=folder / "models" / "model.pt", dataset_dir=case["image"], output_dir=shared)
    bundle_data(bundle).check_output(shared / f"{case['case']}_sct{bundle_data(bundle).output_ext}", case["image"])

    network = parser.get_parsed_content("network_def").eval()
    network.load_state_dict(torch.load(folder / "models" / "model.pt", weights_only=True), strict=True)
    sample = torch.rand(shape) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(folder / "models" / "model.ts")(sample), network(sample))
