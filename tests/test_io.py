"""Atomic outputs: a failed write leaves the old file untouched and no temporary file behind."""

from __future__ import annotations

import pytest

from custom.outputs import atomic_write, write_text


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "summary.json"
    write_text("old\n", target)
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_successful_write_replaces_and_keeps_the_suffix(tmp_path):
    target = tmp_path / "sub" / "ct.nii.gz"
    with atomic_write(target) as tmp:
        assert tmp.endswith(".nii.gz") and tmp != str(target)
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["ct.nii.gz"]


def test_default_bundle_root_is_the_bundle_folder_from_inside_it_or_from_the_repository(tmp_path, monkeypatch):
    from conftest import ROOT

    from custom.bundles import default_bundle_root

    monkeypatch.chdir(ROOT)
    assert default_bundle_root("pix2pix_ngf") == "bundles/pix2pix_ngf"
    monkeypatch.chdir(ROOT / "bundles" / "pix2pix_ngf")
    assert default_bundle_root("pix2pix_ngf") == "."
    monkeypatch.chdir(tmp_path)  # an unzipped bundle elsewhere, run from inside it
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "metadata.json").write_text('{"name": "pix2pix_ngf"}')
    assert default_bundle_root("pix2pix_ngf") == "."


def test_a_resumed_run_removes_partial_checkpoints_of_a_killed_one(tmp_path):
    import os
    import tempfile

    import torch
    from ignite.engine import Engine

    from custom.handlers import ResumableCheckpoint

    target = tmp_path / "checkpoint_last.pt"
    # what a run killed inside atomic_write leaves: its temporary file, named as atomic_write names them
    fd, stale = tempfile.mkstemp(prefix=".checkpoint_last.pt.", suffix=".pt", dir=tmp_path)
    os.close(fd)
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    engine = Engine(lambda e, b: None)
    ResumableCheckpoint(str(target), {"net": torch.nn.Linear(1, 1)}).attach(engine)
    engine.run([0], max_epochs=1)
    assert not os.path.exists(stale)  # removed at start
    assert target.is_file() and other.read_bytes() == b"x"  # the real checkpoint written, nothing else touched


def test_a_failed_write_is_an_output_error_naming_the_file_and_leaves_no_folder(tmp_path, monkeypatch):
    import errno

    import custom.outputs
    from custom.errors import OutputError

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(custom.outputs.tempfile, "mkstemp", full)
    target = tmp_path / "new" / "deeper" / "summary.json"
    with pytest.raises(OutputError, match=r"new/deeper/summary.json: cannot write \(disk full\)"):
        write_text("{}", target)
    assert list(tmp_path.iterdir()) == []  # the folders made for it are gone again


def test_write_texts_writes_all_or_none(tmp_path, monkeypatch):
    import errno

    import custom.outputs
    from custom.errors import OutputError
    from custom.outputs import write_texts

    write_texts({tmp_path / "metrics.csv": "old\n", tmp_path / "summary.json": "{}\n"})
    real_open = open
    calls = []

    def open_then_full(file, mode="r", *args, **kwargs):  # the second file hits a full disk
        calls.append(file)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(custom.outputs, "open", open_then_full, raising=False)
    with pytest.raises(OutputError, match="summary.json: cannot write"):
        write_texts({tmp_path / "metrics.csv": "new\n", tmp_path / "summary.json": '{"new": 1}\n'})
    assert (tmp_path / "metrics.csv").read_text() == "old\n"  # the first file, written, was not renamed into place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "summary.json"]
    calls.clear()
    calls.append("the next write is the first file's")  # now the first file hits the full disk: it is the one named
    with pytest.raises(OutputError, match="metrics.csv: cannot write"):
        write_texts({tmp_path / "metrics.csv": "new\n", tmp_path / "summary.json": '{"new": 1}\n'})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "summary.json"]


def test_a_truncated_nii_gz_is_unreadable_not_zeros(tmp_path):
    """MONAI's LoadImage falls back on ITK when nibabel fails, and ITK returned zeros for a truncated .nii.gz."""
    import numpy as np

    from custom.errors import InputError
    from custom.images import read_image
    from custom.outputs import write_nifti

    path = write_nifti(np.arange(4000).reshape(20, 20, 10), np.eye(4), tmp_path / "mr.nii.gz")
    data = open(path, "rb").read()
    for size in (300, len(data) * 2 // 3):
        (tmp_path / "cut.nii.gz").write_bytes(data[:size])
        with pytest.raises(InputError, match="cut.nii.gz: unreadable image"):
            read_image(tmp_path / "cut.nii.gz")


def test_a_header_claiming_more_than_the_file_holds_is_refused_before_reading(tmp_path, monkeypatch):
    import gzip

    import nibabel as nib
    import numpy as np

    from custom.errors import InputError
    from custom.images import read_image

    header = nib.Nifti1Header()
    header.set_data_shape((1000, 1000, 1000))
    header.set_data_dtype(np.int16)
    (tmp_path / "huge.nii").write_bytes(header.binaryblock + bytes(1004))
    (tmp_path / "huge.nii.gz").write_bytes(gzip.compress(header.binaryblock + bytes(1004)))
    monkeypatch.setattr("monai.transforms.LoadImage.__call__", lambda *a, **k: pytest.fail("the data were read"))
    for name in ("huge.nii", "huge.nii.gz"):
        with pytest.raises(InputError, match=rf"{name}: the header describes a 1000x1000x1000 int16 image"):
            read_image(tmp_path / name)


def test_a_depth_one_volume_is_written_as_a_volume(tmp_path):
    import nibabel as nib
    import torch
    from monai.data import MetaTensor
    from monai.transforms import SaveImage

    from custom.outputs import AtomicNibabelWriter

    image = MetaTensor(torch.zeros(1, 6, 5, 1), affine=torch.eye(4))
    SaveImage(output_dir=tmp_path, writer=AtomicNibabelWriter, separate_folder=False, print_log=False)(
        image, filename=str(tmp_path / "one")
    )
    assert nib.load(tmp_path / "one.nii.gz").shape == (6, 5, 1)


def test_resuming_from_a_bad_checkpoint_names_it(tmp_path):
    import torch
    from ignite.engine import Engine

    from custom.errors import InputError
    from custom.handlers import ResumableCheckpoint

    target = tmp_path / "checkpoint_last.pt"
    torch.save({"generator": torch.nn.Linear(2, 2).state_dict()}, target)
    good = target.read_bytes()
    for content, reason in ((good[:500], "cannot resume from this checkpoint"), (None, "cannot resume")):
        if content is None:  # a checkpoint of something else: other keys
            torch.save({"other": torch.nn.Linear(3, 1).state_dict()}, target)
        else:
            target.write_bytes(content)
        engine = Engine(lambda e, b: None)
        ResumableCheckpoint(str(target), {"generator": torch.nn.Linear(2, 2)}).attach(engine)
        with pytest.raises(InputError, match=f"checkpoint_last.pt: {reason}"):
            engine.run([0], max_epochs=1)


def test_a_full_disk_while_saving_a_checkpoint_names_the_file(tmp_path, monkeypatch):
    import errno

    import torch
    from ignite.engine import Engine

    from custom.errors import OutputError
    from custom.handlers import ResumableCheckpoint

    def full(obj, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    engine = Engine(lambda e, b: None)
    ResumableCheckpoint(str(tmp_path / "checkpoint_last.pt"), {"net": torch.nn.Linear(2, 2)}).attach(engine)
    with pytest.raises(OutputError, match=r"checkpoint_last.pt: cannot write \(disk full\)"):
        engine.run([0], max_epochs=1)
    assert list(tmp_path.iterdir()) == []
