"""Bad inputs, bad outputs and faults, tried as a user would, through the real command line.

Each row of ``CASES`` is one line: the command (``python -m custom ...``, run in-process), the fragment its message
must contain, its exit code, and the files it may leave in its own folder (``{out}``: nothing, unless listed). Bad
inputs are made once in ``{bad}`` by :func:`bad_inputs`; ``{data}`` is a good case (``{data}/mr.nii.gz``,
``ct.nii.gz``, ``mask.nii.gz``), ``{model}`` untrained weights of the bundle, ``{bundle}`` its folder. A ``fault``
makes every write under ``{out}`` fail as on a read-only folder or a full disk.

The few things only a fresh process shows (``python -m monai.bundle run``'s exit code, warnings printed by MONAI) are
the subprocess tests at the end.
"""

from __future__ import annotations

import builtins
import errno
import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import ROOT

from custom.cli import main

BUNDLE = ROOT / "bundles" / "pix2pix_ngf"


@dataclass(frozen=True)
class Case:
    """A command (``{placeholders}``), what its message says, its exit code, what it may leave in ``{out}``."""

    args: str
    says: str
    code: int = 2
    leaves: tuple[str, ...] = ()  # paths under {out} that exist afterwards (no others: no temp files, no folders)
    fault: str | None = None  # "read_only" or "disk_full": every write under {out} fails so
    makes: tuple[str, ...] = ()  # folders under {out} made before the command (e.g. the output folder given)


INFER = "infer {bundle} {out}/sct --ckpt {model} --device cpu --input"
MR = " {data}/mr.nii.gz"
FULL, RO = "disk_full", "read_only"
WITH = "infer {bundle} {out}/sct --device cpu --input {data}/mr.nii.gz --ckpt"  # a good MR with a model...
SCORE = "evaluate --pred {data}/ct.nii.gz --ct"
SCORE_ALL = "evaluate --pred-dir {bad}/preds --out-dir {out}/r --datalist"
JSON = "evaluate --pred {data}/ct.nii.gz --ct {data}/ct.nii.gz --json"
CASES = {
    # finding 3: data problems of infer
    "infer missing MR": Case(INFER + " {bad}/missing.nii.gz", "missing.nii.gz: file or folder not found"),
    "infer corrupt MR": Case(INFER + " {bad}/truncated.nii.gz", "truncated.nii.gz: unreadable image"),
    "infer mask shape": Case(INFER + " {data}/mr.nii.gz --mask {bad}/small.nii.gz", "small.nii.gz: shape (24"),
    "infer str items": Case("infer {bundle} {out}/sct --datalist {bad}/strings.json", "item 0 of 'test' is a str"),
    # finding 9: a header claiming more than the file holds
    "infer huge .nii": Case(INFER + " {bad}/huge.nii", "(2000 MB) that cannot be in a 1352 byte file"),
    "infer huge .nii.gz": Case(INFER + " {bad}/huge.nii.gz", "(2000 MB) that cannot be in a 59 byte compressed"),
    # finding 11: checkpoints
    "infer missing ckpt": Case(WITH + " {bad}/none.pt", "none.pt: no trained model"),
    "infer truncated ckpt": Case(WITH + " {bad}/cut.pt", "cut.pt: not a readable model checkpoint"),
    "infer foreign ckpt": Case(WITH + " {bad}/foreign.pt", "foreign.pt: the weights do not fit"),
    # finding 10: outputs
    "infer read-only": Case(INFER + MR, "sct.nii.gz: cannot write (Permission denied)", 2, ("sct",), RO, ("sct",)),
    "infer disk full": Case(INFER + MR, "good_sct.nii.gz: cannot write (disk full)", 2, (), FULL),
    "--json folder": Case(JSON + " {out}/dir", "dir: the --json file is a folder", 2, ("dir",), None, ("dir",)),
    "--json disk full": Case(JSON + " {out}/m.json", "m.json: cannot write (disk full)", 2, (), FULL),
    # finding 12: evaluate
    "evaluate constant CT": Case(SCORE + " {bad}/flat.nii.gz", "flat.nii.gz: cannot score against this CT: constant"),
    "evaluate non-HU CT": Case(SCORE + " {bad}/unit.nii.gz", "do not look like Hounsfield units"),
    "evaluate repeated case": Case(SCORE_ALL + " {bad}/twice.json", "case c1 is listed more than once in 'test'"),
    "evaluate disk full": Case(SCORE_ALL + " {bad}/scored.json", "metrics.csv: cannot write (disk full)", 2, (), FULL),
    # finding 5: the datalist rules of check (shared with training)
    "check no training": Case("check --datalist {bad}/no_training.json", "no 'training' list", 1),
    "check str items": Case("check --datalist {bad}/strings.json", "item 0 of 'test' is a str", 2),
    "check case twice": Case("check --datalist {bad}/twice.json", "case c1 is listed more than once in test", 1),
    "check leakage": Case("check --datalist {bad}/overlap.json", "case c1 is in both training and test", 1),
    "check allow overlap": Case("check --datalist {bad}/overlap.json --allow-overlap", "OK: 3 cases, no problems", 0),
}  # fmt: skip


def _save(array: np.ndarray, path: Path, affine: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(array.astype(np.int16), affine), str(path))


def _datalist(path: Path, **splits: list[dict]) -> None:
    path.write_text(json.dumps(splits))


@pytest.fixture(scope="module")
def bad_inputs(heads_datalist, tmp_path_factory) -> dict[str, str]:
    """The placeholders of ``CASES``: a good case, a model, and one bad input of each kind."""
    from monai.bundle import ConfigParser

    heads = json.loads(Path(heads_datalist).read_text())
    case, other = heads["test"][0], heads["validation"][0]
    bad = tmp_path_factory.mktemp("bad")
    data = bad / "good"
    data.mkdir()
    for key, name in (("image", "mr"), ("label", "ct"), ("mask", "mask")):
        shutil.copy(case[key], data / f"{name}.nii.gz")
    mr = nib.load(case["image"])
    ct = np.asarray(nib.load(case["label"]).dataobj)
    raw = (data / "mr.nii.gz").read_bytes()
    (bad / "truncated.nii.gz").write_bytes(raw[: len(raw) * 2 // 3])
    _save(np.ones(tuple(s // 2 for s in mr.shape)), bad / "small.nii.gz", mr.affine)
    header = nib.Nifti1Header()
    header.set_data_shape((1000, 1000, 1000))
    header.set_data_dtype(np.int16)
    (bad / "huge.nii").write_bytes(header.binaryblock + bytes(4 + 1000))
    (bad / "huge.nii.gz").write_bytes(gzip.compress(header.binaryblock + bytes(4 + 1000)))
    _save(np.full(ct.shape, 40), bad / "flat.nii.gz", mr.affine)
    _save((ct - ct.min()) / (ct.max() - ct.min()) * 200, bad / "unit.nii.gz", mr.affine)  # 0..200: not HU

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.json"))
    model = bad / "model.pt"
    torch.save(parser.get_parsed_content("network_def").state_dict(), model)
    (bad / "cut.pt").write_bytes(model.read_bytes()[:1000])
    torch.save(torch.nn.Linear(2, 2).state_dict(), bad / "foreign.pt")

    item = {"image": str(data / "mr.nii.gz"), "label": str(data / "ct.nii.gz"), "mask": str(data / "mask.nii.gz")}
    c1 = {**item, "case": "c1", "subject": "c1"}
    c2 = {**{k: other[k] for k in ("image", "label", "mask")}, "case": "c2", "subject": "c2"}
    _datalist(bad / "strings.json", training=[c2], test=[str(data / "mr.nii.gz")])
    _datalist(bad / "no_training.json", test=[c1])
    _datalist(bad / "twice.json", training=[c2], test=[c1, c1])
    _datalist(bad / "overlap.json", training=[c1], validation=[c2], test=[c1])
    _datalist(bad / "scored.json", training=[c2], test=[c1])
    (bad / "preds").mkdir()
    shutil.copy(data / "ct.nii.gz", bad / "preds" / "c1_sct.nii.gz")
    return {"bad": str(bad), "data": str(data), "model": str(model), "bundle": str(BUNDLE)}


def fail_writes_under(monkeypatch, root: Path, error: int) -> None:
    """Make every file opened for writing under ``root`` fail with ``error`` (EACCES: a read-only folder, ENOSPC: a
    full disk), through both ``open`` and ``os.open`` (``tempfile.mkstemp``); other files are untouched."""
    real_open, real_os_open = builtins.open, os.open

    def refuse(path) -> None:
        if os.path.abspath(path).startswith(str(root)):
            raise OSError(error, os.strerror(error), str(path))

    def fake_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)


FAULTS = {"read_only": errno.EACCES, "disk_full": errno.ENOSPC}


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    captured = capsys.readouterr()
    return exit_.value.code, captured.out + captured.err


def _left(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, bad_inputs, tmp_path, capsys, monkeypatch):
    case = CASES[name]
    out = tmp_path / "out"
    out.mkdir()
    for folder in case.makes:
        (out / folder).mkdir()
    places = {**bad_inputs, "out": str(out)}
    args = [a.format(**places) for a in case.args.split()]
    # log handlers made by an earlier in-process run still hold that test's closed capture stream: stay quiet on it
    monkeypatch.setattr(logging, "raiseExceptions", False)
    if case.fault:
        fail_writes_under(monkeypatch, out, FAULTS[case.fault])
    code, text = run_cli(args, capsys)
    monkeypatch.undo()
    assert code == case.code, text
    assert case.says.format(**places) in text
    if case.code == 2:
        errors = [line for line in text.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in text, text
    assert _left(out) == sorted(case.leaves)


def test_the_table_covers_every_command_that_reads_user_files():
    commands = {case.args.split()[0] for case in CASES.values()}
    assert {"infer", "evaluate", "check"} <= commands


def test_debug_shows_the_traceback(bad_inputs, tmp_path, monkeypatch):
    from custom.io import InputError

    args = ["check", "--datalist", f"{bad_inputs['bad']}/strings.json"]
    with pytest.raises(InputError, match="is a str"):
        main(args + ["--debug"])
    monkeypatch.setenv("SCT_DEBUG", "1")
    with pytest.raises(InputError, match="is a str"):
        main(args)


# ---------------------------------------------------------------------------------------------- fresh processes
def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SCT_DEBUG", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _errors(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_monai_bundle_run_training_with_bad_data_is_one_line(bad_inputs, tmp_path):
    """A datalist whose training case is in the test split too: one error, exit code 2, no models folder."""
    run = _run(
        ["-m", "monai.bundle", "run", "training", "--config_file", str(BUNDLE / "configs" / "train.json"),
         "--datalist", f"{bad_inputs['bad']}/overlap.json", "--bundle_root", str(tmp_path)],
        tmp_path,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert len(_errors(run)) == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"{bad_inputs['bad']}/overlap.json: case c1 is in both training and test (data leakage)" in run.stderr
    assert not (tmp_path / "models").exists()


def test_monai_bundle_run_inference_with_a_corrupt_mr_is_one_line(bad_inputs, tmp_path):
    run = _run(
        ["-m", "monai.bundle", "run", "--config_file", str(BUNDLE / "configs" / "inference.json"),
         "--dataset_dir", f"{bad_inputs['bad']}/truncated.nii.gz", "--ckpt_path", bad_inputs["model"],
         "--output_dir", str(tmp_path / "out")],
        tmp_path,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert len(_errors(run)) == 1 and "truncated.nii.gz: unreadable image" in run.stderr
    assert "Traceback" not in run.stderr and "training" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_png_inference_with_a_config_elsewhere_prints_no_warning_a_user_cannot_act_on(png_datalist, tmp_path):
    """MONAI's axcodes notice on every PNG and its 'Not all config files are in <bundle>/configs' notice."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / f) for f in ("inference.json", "inference_png2d.json")])
    torch.save(parser.get_parsed_content("network_def").state_dict(), tmp_path / "model.pt")
    (tmp_path / "extra.json").write_text('{"sw_batch_size": 2}')
    png = json.loads(Path(png_datalist).read_text())["validation"][0]["image"]
    run = _run(
        ["-m", "custom", "infer", str(BUNDLE), str(tmp_path / "out"), "--input", png, "--device", "cpu",
         "--ckpt", str(tmp_path / "model.pt"), "--config", str(tmp_path / "extra.json")],
        tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "axcodes" not in run.stderr and "Not all config files" not in run.stderr, run.stderr
    assert "WARNING" not in run.stderr and "Warning" not in run.stderr, run.stderr
