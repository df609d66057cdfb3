"""No input is ever overwritten: an output path that is (or links to) an input, or a folder, is refused before
anything is written, and two inputs that would give the same output file are an error naming both."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from conftest import ROOT

from custom.cli import main
from custom.errors import InputError


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    return exit_.value.code, capsys.readouterr().err


def first_case(datalist) -> dict:
    return json.loads(open(datalist).read())["test"][0]


@pytest.mark.parametrize("target", ["ct", "pred", "link_to_mask", "folder"])
def test_evaluate_json_never_replaces_an_input(target, heads_datalist, tmp_path, capsys):
    case = first_case(heads_datalist)
    pred = tmp_path / "pred.nii.gz"
    shutil.copy(case["label"], pred)
    paths = {
        "ct": case["label"],
        "pred": str(pred),
        "link_to_mask": str(tmp_path / "link.json"),
        "folder": str(tmp_path),
    }
    os.symlink(case["mask"], tmp_path / "link.json")
    before = {p: open(p, "rb").read() for p in (case["label"], str(pred), case["mask"])}
    code, err = run_cli(
        ["evaluate", "--pred", str(pred), "--ct", case["label"], "--mask", case["mask"], "--json", paths[target]],
        capsys,
    )
    assert code == 2 and ("would overwrite the input" in err or "is a folder" in err)
    assert {p: open(p, "rb").read() for p in before} == before


def test_datalist_out_never_replaces_an_input(heads_datalist, tmp_path, capsys):
    data = json.loads(open(heads_datalist).read())
    mr = data["training"][0]["image"]
    before = open(mr, "rb").read()
    root = os.path.dirname(os.path.dirname(mr))
    code, err = run_cli(["datalist", "--root", root, "--layout", "synthrad2023", "--out", mr], capsys)
    assert code == 2 and "would overwrite the input" in err
    assert open(mr, "rb").read() == before


def _untrained_model(path) -> None:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(ROOT / "bundles" / "pix2pix_ngf" / "configs" / "inference.json"))
    torch.save(parser.get_parsed_content("network_def").state_dict(), path)


def test_case_ids_with_dots_keep_distinct_outputs(heads_datalist, tmp_path):
    from custom.inference import run_bundle_inference

    case = first_case(heads_datalist)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("pat.1.nii.gz", "pat.2.nii.gz"):
        shutil.copy(case["image"], inputs / name)
    _untrained_model(tmp_path / "model.pt")
    out = tmp_path / "out"
    written = run_bundle_inference(
        ROOT / "bundles" / "pix2pix_ngf", ckpt=tmp_path / "model.pt", dataset_dir=str(inputs), output_dir=str(out)
    )
    assert sorted(os.path.basename(p) for p in written) == ["pat.1_sct.nii.gz", "pat.2_sct.nii.gz"]
    assert sorted(p.name for p in out.iterdir()) == ["pat.1_sct.nii.gz", "pat.2_sct.nii.gz"]  # what was printed


def test_two_inputs_with_one_output_name_are_an_error(heads_datalist, tmp_path):
    from custom.inference import run_bundle_inference

    case = first_case(heads_datalist)
    for site in ("site_a", "site_b"):  # the same case id in two folders
        (tmp_path / "inputs" / site / "P1").mkdir(parents=True)
        shutil.copy(case["image"], tmp_path / "inputs" / site / "P1" / "mr.nii.gz")
    _untrained_model(tmp_path / "model.pt")
    with pytest.raises(InputError, match=r"site_a/P1/mr.nii.gz and .*site_b/P1/mr.nii.gz|site_b.* and .*site_a"):
        run_bundle_inference(
            ROOT / "bundles" / "pix2pix_ngf", ckpt=tmp_path / "model.pt", dataset_dir=str(tmp_path / "inputs"),
            output_dir=str(tmp_path / "out"),
        )  # fmt: skip
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_single_slice_stays_a_volume_and_a_dicom_folder_is_one(heads_datalist, tmp_path):
    """3D means 3D: a volume of depth 1 gives a depth-1 sCT (not a 2D image), and a folder of DICOM slices one sCT
    volume named after the folder (not one 2D sCT per slice)."""
    import nibabel as nib
    import numpy as np

    from custom.inference import run_bundle_inference

    pytest.importorskip("itk")
    from test_dicom import write_series

    mr = nib.load(first_case(heads_datalist)["image"])
    volume = np.asarray(mr.dataobj)
    (tmp_path / "in").mkdir()
    nib.save(nib.Nifti1Image(volume[:, :, 4:5], mr.affine), tmp_path / "in" / "slice.nii.gz")
    series = tmp_path / "P7"
    write_series(series, volume.transpose(2, 1, 0), "1.2.826.0.1.3680043.2.1125.7")  # one .dcm file per slice
    _untrained_model(tmp_path / "model.pt")
    model = tmp_path / "model.pt"
    bundle = ROOT / "bundles" / "pix2pix_ngf"
    one = run_bundle_inference(bundle, ckpt=model, dataset_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "a"))
    assert nib.load(one[0]).shape == (*volume.shape[:2], 1)
    folder = run_bundle_inference(bundle, ckpt=model, dataset_dir=str(series), output_dir=str(tmp_path / "b"))
    assert [os.path.basename(p) for p in folder] == ["P7_sct.nii.gz"] and os.listdir(tmp_path / "b") == [
        "P7_sct.nii.gz"
    ]
    assert nib.load(folder[0]).shape == volume.shape
