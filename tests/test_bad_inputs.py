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
    absent: tuple[str, ...] = ()  # files that must not exist afterwards (markers that code smuggled in would create)
    verify: str | None = None  # a check of VERIFY run afterwards with the placeholders (e.g. an output's header)


INFER = "infer {bundle} {out}/sct --ckpt {model} --device cpu --input"
MR = " {data}/mr.nii.gz"
FULL, RO = "disk_full", "read_only"
WITH = "infer {bundle} {out}/sct --device cpu --input {data}/mr.nii.gz --ckpt"  # a good MR with a model...
SCORE = "evaluate --pred {data}/ct.nii.gz --ct"
SCORE_ALL = "evaluate --pred-dir {bad}/preds --out-dir {out}/r --datalist"
JSON = "evaluate --pred {data}/ct.nii.gz --ct {data}/ct.nii.gz --json"
DATALIST = "infer {bundle} {out}/sct --ckpt {model} --device cpu --datalist"
RECORD = WITH + " {bad}/record_"  # a folder of untrained weights with a model.json that carries code or junk
RAN, RAN_TOO = ("{bad}/marker_record",), ("{bad}/marker_datalist",)  # made only if the code smuggled in runs
SMUGGLED = ("sct", "sct/{expression}_sct.nii.gz")  # the case whose id is an expression, as a plain name
PNG = "evaluate --pred {bad}/"
ON = "infer {bundle} {out}/sct --ckpt {model} --device "
IN_ORDER = "infer {bundle} --ckpt {model} --device cpu "
CASES = {
    # finding 3: data problems of infer
    "infer missing MR": Case(INFER + " {bad}/missing.nii.gz", "missing.nii.gz: file or folder not found"),
    "infer corrupt MR": Case(INFER + " {bad}/truncated.nii.gz", "truncated.nii.gz: unreadable image"),
    "infer mask shape": Case(INFER + " {data}/mr.nii.gz --mask {bad}/small.nii.gz", "small.nii.gz: shape (24"),
    # voxels are checked as each case is loaded (read once): the cases before a bad one are written, and kept
    "infer NaN in a folder": Case(INFER + " {bad}/nan_folder", "b.nii.gz: 5 NaN or infinite value(s) in the MR", 2,
                                  ("sct", "sct/a_sct.nii.gz")),
    "infer empty mask": Case(INFER + MR + " --mask {bad}/empty_mask.nii.gz", "empty_mask.nii.gz: empty mask (no voxel"),
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
    # second sweep (issue 24), finding 1: a model record (model.json beside model.pt) is data, never code
    "record expression": Case(RECORD + "expression/model.pt", "network_def#dropout: a config expression", absent=RAN),
    "record _requires_": Case(RECORD + "requires/model.pt", "model.json: network_def#_requires_: not", absent=RAN),
    "record foreign target": Case(RECORD + "target/model.pt", "'custom.outputs.write_text' is not an", absent=RAN),
    "record foreign backbone": Case(RECORD + "backbone/model.pt", "backbone: 'torch.nn.Linear' is not an allowed"),
    "record reference": Case(RECORD + "reference/model.pt", "model.json: patch_size: a config expression or"),
    "record other setting": Case(RECORD + "setting/model.pt", "model.json: writer: not a setting a model record"),
    "record unknown class": Case(RECORD + "unknown/model.pt", "'monai.networks.nets.NoSuchNet' is not a network"),
    # finding 2: a datalist is data: an item's fields are never evaluated
    "datalist expression": Case(DATALIST + " {bad}/expression.json", "", 0, SMUGGLED, absent=RAN_TOO),
    "folder file expression": Case(INFER + " {bad}/expression_folder", "", 0, SMUGGLED, absent=RAN_TOO),
    # finding 3: case ids are file names inside the output folder; infer and evaluate name a case's sCT alike
    "infer case escapes": Case(DATALIST + " {bad}/escape.json", "case '../escape' would leave the output folder"),
    "check case escapes": Case("check --datalist {bad}/escape.json", "case '../escape' would leave the output"),
    "evaluate case escapes": Case(SCORE_ALL + " {bad}/escape.json", "case '../escape' would leave the output"),
    "check absolute case": Case("check --datalist {bad}/absolute.json", "case '/tmp/c1' would leave the output"),
    "check backslash case": Case("check --datalist {bad}/backslash.json", "case 'a\\\\b' would leave the output"),
    "check empty case": Case("check --datalist {bad}/empty_case.json", "case '' would leave the output folder"),
    "infer names by case": Case(DATALIST + " {bad}/scored.json", "c1_sct.nii.gz", 0, ("sct", "sct/c1_sct.nii.gz")),
    "infer and evaluate": Case(DATALIST + " {bad}/scored.json --config {bundle}/configs/evaluate.json", "c1", 0,
                               ("sct", "sct/c1_sct.nii.gz", "sct/figures", "sct/figures/c1.png", "sct/metrics.csv",
                                "sct/summary.json")),
    # finding 4: every PNG mode read exactly as grey or refused; the header orientation kept; no folder half read
    "palette PNG": Case(PNG + "palette.png --ct {bad}/grey.png", "mae: 0.000000", 0),
    "grey RGBA PNG": Case(PNG + "grey_rgba.png --ct {bad}/grey.png", "mae: 0.000000", 0),
    "bilevel PNG": Case(PNG + "bilevel.png --ct {bad}/bilevel_grey.png", "mae: 0.000000", 0),
    "colour PNG": Case(PNG + "colour.png --ct {bad}/grey.png", "colour.png: a colour PNG"),
    "transparent PNG": Case(PNG + "transparent.png --ct {bad}/grey.png", "transparent.png: transparent pixels"),
    "16-bit PNG": Case(PNG + "deep.png --ct {bad}/grey.png", "deep.png: a 16-bit PNG"),
    "infer grey RGB PNG": Case(INFER + " {bad}/grey_rgb.png", "", 0, ("sct", "sct/grey_rgb_sct.png")),
    "infer colour PNG": Case(INFER + " {bad}/colour.png", "colour.png: a colour PNG"),
    "infer qform and sform": Case(INFER + " {bad}/qsform.nii.gz", "", 0, ("sct", "sct/qsform_sct.nii.gz"),
                                  verify="header_transforms_kept"),
    "infer mixed folder": Case(INFER + " {bad}/mixed", "mixed: holds case folders (A) and loose images (b.nii.gz)"),
    # finding 5: a user's mistake is one line, before any work
    "infer --precision": Case(INFER + MR + " --precision bf17", "--precision bf17: expected one of auto, fp32, bf16"),
    "infer --device cuda": Case(ON + "cuda --input" + MR, "--device cuda: no CUDA GPU on this machine"),
    "infer --device typo": Case(ON + "gpu --input" + MR, "--device gpu: not a device"),
    "infer --patch_size": Case(INFER + MR + " --patch_size abc", "--patch_size abc: expected a list of 2 whole"),
    "infer --sw_batch_size": Case(INFER + MR + " --sw_batch_size 0", "--sw_batch_size 0: expected a whole number"),
    "infer empty output": Case("infer {bundle} --output {empty} --ckpt {model} --input" + MR, "--output: empty"),
    "infer training config": Case(INFER + MR + " --config {bundle}/configs/train_quick.json", "minutes, epochs"),
    "infer singular affine": Case(INFER + " {bad}/singular.nii.gz", "singular.nii.gz: singular affine"),
    "check singular affine": Case("check --datalist {bad}/singular.json", "singular affine", 1),
    # finding 7: names near the file-system limit; a folder given as the datalist file
    "infer name too long": Case(INFER + " {bad}/{long_name}.nii.gz", "_sct.nii.gz: file name too long"),
    "infer long name": Case(INFER + " {bad}/{longish_name}.nii.gz", "", 0, ("sct", "sct/{longish_name}_sct.nii.gz")),
    "datalist out folder": Case("datalist --root {bad}/good_tree --layout synthrad2023 --out {out}/dir/", "dir/: a"),
    # finding 8: infer BUNDLE INPUT OUTPUT, or flags; a mix-up is one clear line
    "infer positional": Case(IN_ORDER + "{data}/mr.nii.gz {out}/sct", "good_sct", 0, ("sct", "sct/good_sct.nii.gz")),
    "infer swapped": Case(IN_ORDER + "{out}/sct {data}/mr.nii.gz", "sct: file or folder not found (usage: infer"),
    "infer input twice": Case(IN_ORDER + "{data}/mr.nii.gz {out}/sct --input {data}/mr.nii.gz", "input is given twice"),
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
    _save(np.zeros(mr.shape), bad / "empty_mask.nii.gz", mr.affine)
    (bad / "nan_folder").mkdir()
    shutil.copy(data / "mr.nii.gz", bad / "nan_folder" / "a.nii.gz")
    with_nan = np.asarray(mr.dataobj, dtype=np.float32)
    with_nan.flat[:5] = np.nan
    nib.save(nib.Nifti1Image(with_nan, mr.affine), str(bad / "nan_folder" / "b.nii.gz"))
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
    _datalist(bad / "trainable.json", training=[c2], validation=[c1])
    (bad / "preds").mkdir()
    shutil.copy(data / "ct.nii.gz", bad / "preds" / "c1_sct.nii.gz")

    # issue 24: model records that carry code (each beside a copy of the weights), datalists and files that do
    network_def, marker = parser.get("network_def"), bad / "marker_record"
    touch = f"__import__('pathlib').Path(bytes.fromhex('{str(marker).encode().hex()}').decode()).touch()"
    records = {
        "record_expression": {"network_def": {**network_def, "dropout": f"${touch} or 0.0"}},
        "record_requires": {"network_def": {**network_def, "_requires_": f"${touch}"}},
        "record_target": {"network_def": {"_target_": "custom.outputs.write_text", "text": "", "path": str(marker)}},
        "record_backbone": {"network_def": {**network_def, "backbone": "torch.nn.Linear"}},
        "record_reference": {"patch_size": "@ckpt_path"},
        "record_setting": {"writer": "custom.outputs.AtomicPILWriter"},
        "record_unknown": {"network_def": {**network_def, "backbone": "monai.networks.nets.NoSuchNet"}},
    }  # fmt: skip
    for name, record in records.items():
        (bad / name).mkdir()
        shutil.copy(model, bad / name / "model.pt")
        (bad / name / "model.json").write_text(json.dumps({"config": record}))
    hidden = str(bad / "marker_datalist").encode().hex()
    expression = f"$__import__('pathlib').Path(bytes.fromhex('{hidden}').decode()).touch()"
    _datalist(bad / "expression.json", training=[c2], test=[{**item, "case": expression}])
    (bad / "expression_folder").mkdir()
    shutil.copy(data / "mr.nii.gz", bad / "expression_folder" / f"{expression}.nii.gz")
    for name, case_id in (("escape", "../escape"), ("absolute", "/tmp/c1"), ("backslash", "a\\b"), ("empty_case", "")):
        _datalist(bad / f"{name}.json", training=[c2], test=[{**item, "case": case_id}])

    _pngs(bad)
    source = nib.load(data / "mr.nii.gz")
    both = nib.Nifti1Image(np.asarray(source.dataobj), None, source.header.copy())
    shifted = source.affine.copy()
    shifted[:3, 3] += (10.0, -5.0, 3.0)
    both.set_qform(source.affine, code=1)  # ITK-based viewers read this one
    both.set_sform(shifted, code=2)  # nibabel and MONAI this one
    nib.save(both, bad / "qsform.nii.gz")
    for name in ("mixed", "mixed/A"):
        (bad / name).mkdir()
    shutil.copy(data / "mr.nii.gz", bad / "mixed" / "A" / "mr.nii.gz")
    shutil.copy(data / "mr.nii.gz", bad / "mixed" / "b.nii.gz")
    flat = mr.affine.copy()
    flat[:3, 2] = 0.0  # zero spacing along the third axis (as an sform: a qform cannot even hold it)
    singular = nib.Nifti1Image(np.asarray(mr.dataobj).astype(np.int16), None)
    singular.set_sform(flat, code=1)
    nib.save(singular, bad / "singular.nii.gz")
    _datalist(bad / "singular.json", training=[c2], test=[{"image": str(bad / "singular.nii.gz"), "case": "s1"}])
    names = {"long_name": "a" * 248, "longish_name": "b" * 240}  # + "_sct.nii.gz": 259 and 251 characters
    for name in names.values():
        shutil.copy(data / "mr.nii.gz", bad / f"{name}.nii.gz")
    (bad / "good_tree" / "g1").mkdir(parents=True)
    for name in ("mr", "ct", "mask"):
        shutil.copy(data / f"{name}.nii.gz", bad / "good_tree" / "g1" / f"{name}.nii.gz")
    return {"bad": str(bad), "data": str(data), "model": str(model), "bundle": str(BUNDLE), "empty": "",
            "expression": expression, **names}  # fmt: skip


def _pngs(folder: Path) -> None:
    """8-bit grey slices stored in other PNG modes (exactly the grey levels of ``grey.png``), and ones that are not
    grey: colour, transparent, 16-bit."""
    from PIL import Image

    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (48, 56)).astype(np.uint8)
    Image.fromarray(grey).save(folder / "grey.png")
    order = rng.permutation(256).astype(np.uint8)  # palette entry i is grey level order[i]
    palette = Image.fromarray(np.argsort(order)[grey].astype(np.uint8), mode="P")
    palette.putpalette(np.repeat(order, 3).tolist())
    palette.save(folder / "palette.png")
    opaque = np.full(grey.shape, 255, np.uint8)
    Image.fromarray(np.stack([grey, grey, grey, opaque], -1), mode="RGBA").save(folder / "grey_rgba.png")
    Image.fromarray(np.stack([grey, grey, grey], -1), mode="RGB").save(folder / "grey_rgb.png")
    Image.fromarray(np.stack([grey, grey // 2, grey], -1), mode="RGB").save(folder / "colour.png")
    Image.fromarray(np.stack([grey, np.where(grey > 128, 255, 0).astype(np.uint8)], -1), mode="LA").save(
        folder / "transparent.png"
    )
    Image.fromarray(grey.astype(np.uint16) * 16).save(folder / "deep.png")
    Image.fromarray(grey > 128).convert("1").save(folder / "bilevel.png")
    Image.fromarray(np.where(grey > 128, 255, 0).astype(np.uint8)).save(folder / "bilevel_grey.png")


def _header_transforms_kept(places: dict) -> None:
    """The sCT has the MR's qform and sform, codes included: every reader puts the two on the same grid."""
    mr = nib.load(Path(places["bad"]) / "qsform.nii.gz")
    sct = nib.load(Path(places["out"]) / "sct" / "qsform_sct.nii.gz")
    for get in ("get_qform", "get_sform"):
        (a, code_a), (b, code_b) = getattr(mr, get)(coded=True), getattr(sct, get)(coded=True)
        assert code_a == code_b and np.allclose(a, b, atol=1e-4), (get, a, b)


VERIFY = {"header_transforms_kept": _header_transforms_kept}


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
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
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
    assert _left(out) == sorted(path.format(**places) for path in case.leaves)
    for path in case.absent:
        assert not os.path.exists(path.format(**places)), f"{path}: code in the input ran"
    if case.verify:
        VERIFY[case.verify](places)


def test_the_table_covers_every_command_that_reads_user_files():
    commands = {case.args.split()[0] for case in CASES.values()}
    assert {"infer", "evaluate", "check"} <= commands


def test_debug_shows_the_traceback(bad_inputs, tmp_path, monkeypatch):
    from custom.errors import InputError

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


@pytest.mark.parametrize(
    "datalist,says", [("overlap.json", "overlap.json: case c1 is in both training and test (data leakage)")]
)  # fmt: skip
def test_monai_bundle_run_training_with_bad_data_is_one_line(datalist, says, bad_inputs, tmp_path):
    """A datalist whose training case is in the test split too: one error, exit code 2, no models folder (a case id
    that is a path goes through the same check: rows "check case escapes" and "infer case escapes" above)."""
    run = _run(
        ["-m", "monai.bundle", "run", "training", "--config_file", str(BUNDLE / "configs" / "train.json"),
         "--datalist", f"{bad_inputs['bad']}/{datalist}", "--bundle_root", str(tmp_path)],
        ROOT,  # the repository's configs run from its root (their macros name the base from there)
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert len(_errors(run)) == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"{bad_inputs['bad']}/{says}" in run.stderr
    assert not (tmp_path / "models").exists() and not (tmp_path / "runs").exists()


def test_a_failed_training_run_leaves_no_empty_folders(bad_inputs, tmp_path):
    """A run that fails after it started (here: a network the override makes impossible) removes the models/ and
    runs/ folders it made while they hold no checkpoint or result."""
    run = _run(
        ["-m", "monai.bundle", "run", "training", "--config_file", str(BUNDLE / "configs" / "train.json"),
         "--datalist", f"{bad_inputs['bad']}/trainable.json", "--bundle_root", str(tmp_path),
         "--network_def#features", "[1,2]"],
        ROOT,  # the repository's configs run from its root (their macros name the base from there)
    )  # fmt: skip
    assert run.returncode != 0
    assert not (tmp_path / "models").exists() and not (tmp_path / "runs").exists(), sorted(tmp_path.rglob("*"))


def _interrupted(bad_inputs: dict, tmp_path: Path, signal_number: int, when: str) -> tuple[int, str, Path]:
    """``custom infer`` on a folder of four heads, sent ``signal_number`` once the output folder exists (``when`` =
    "started") or once its first sCT is written ("first output")."""
    import time

    source = nib.load(Path(bad_inputs["data"]) / "mr.nii.gz")
    big = np.tile(np.asarray(source.dataobj), (3, 3, 2))  # 144 x 144 x 20: a few seconds each
    inputs = tmp_path / "in"
    inputs.mkdir()
    for n in range(4):
        _save(big, inputs / f"head{n}.nii.gz", source.affine)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("SCT_DEBUG", None)
    command = [sys.executable, "-m", "custom", "infer", str(BUNDLE), str(inputs), str(out), "--ckpt",
               bad_inputs["model"], "--device", "cpu"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if out.is_dir() and (when == "started" or any(out.glob("*_sct.nii.gz"))):
            break
        time.sleep(0.05)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=300)
    return process.returncode, stderr, out


def _only_whole_outputs(out: Path, shape: tuple[int, ...]) -> list[str]:
    """The files left in ``out``: complete sCTs only (no temporary or partial file); their names."""
    names = sorted(p.name for p in out.iterdir()) if out.exists() else []
    for name in names:
        assert name.endswith("_sct.nii.gz") and not name.startswith("."), names
        assert nib.load(out / name).get_fdata().shape == shape
    return names


def test_ctrl_c_during_infer_is_one_line_and_keeps_finished_files(bad_inputs, tmp_path):
    import signal

    code, stderr, out = _interrupted(bad_inputs, tmp_path, signal.SIGINT, "first output")
    assert code == 130, stderr[-3000:]
    assert len([line for line in stderr.splitlines() if line.startswith("error:")]) == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert 1 <= len(_only_whole_outputs(out, (144, 144, 20))) < 4


def test_sigterm_before_the_first_output_leaves_no_empty_folder(bad_inputs, tmp_path):
    import signal

    code, stderr, out = _interrupted(bad_inputs, tmp_path, signal.SIGTERM, "started")
    assert code == 143, stderr[-3000:]
    assert len([line for line in stderr.splitlines() if line.startswith("error:")]) == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    written = _only_whole_outputs(out, (144, 144, 20))
    assert written or not out.exists()  # nothing finished: no empty output folder left


def test_monai_bundle_run_inference_with_a_corrupt_mr_is_one_line(bad_inputs, tmp_path):
    run = _run(
        ["-m", "monai.bundle", "run", "--config_file", str(BUNDLE / "configs" / "inference.json"),
         "--dataset_dir", f"{bad_inputs['bad']}/truncated.nii.gz", "--ckpt_path", bad_inputs["model"],
         "--output_dir", str(tmp_path / "out")],
        ROOT,  # the repository's configs run from its root (their macros name the base from there)
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


# ----------------------------------------------------------------------------- option values under monai.bundle run
TRAINING_OPTIONS = {
    "--epochs 0": "--epochs 0: expected a whole number >= 1",
    "--batch_size 0": "--batch_size 0: expected a whole number >= 1",
    "--minutes -5": "--minutes -5: expected a number > 0",
    "--learning_rate abc": "--learning_rate abc: expected a number > 0",
    "--precision bf17": "--precision bf17: expected one of auto, fp32, bf16, fp16",
    "--device cuda": "--device cuda: no CUDA GPU on this machine",
    "--patch_size abc": "--patch_size abc: expected a list of 2 whole numbers",
}


@pytest.mark.parametrize("option", sorted(TRAINING_OPTIONS))
def test_monai_bundle_run_training_refuses_a_bad_value_before_any_work(option, bad_inputs, tmp_path, capsys,
                                                                       monkeypatch):  # fmt: skip
    """``python -m monai.bundle run training --epochs 0`` (run here as ``python -m`` runs it, in this process): one
    line naming the option, exit code 2, and no models/ or runs/ folder."""
    import runpy

    import monai.bundle.__main__

    if "cuda" in option and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    args = ["run", "training", "--config_file", str(BUNDLE / "configs" / "train.json"), "--bundle_root", str(tmp_path),
            "--datalist", f"{bad_inputs['bad']}/trainable.json", *option.split()]  # fmt: skip
    monkeypatch.setattr(sys, "argv", [monai.bundle.__main__.__file__, *args])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("monai.bundle", run_name="__main__", alter_sys=False)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert exit_.value.code == 2, text
    assert TRAINING_OPTIONS[option] in text
    assert len([line for line in text.splitlines() if line.startswith("error:")]) == 1 and "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_infer_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["infer", "--help"])
    captured = capsys.readouterr()
    text = captured.out + captured.err  # fire shows help on stderr
    for option in (
        "--precision",
        "--datalist",
        "--split",
        "--mask",
        "--ckpt",
        "--device",
        "--config",
        "INPUT",
        "OUTPUT",
    ):
        assert option in text, option
