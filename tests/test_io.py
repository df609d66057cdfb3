"""Atomic outputs: a failed write leaves the old file untouched and no temporary file behind."""

from __future__ import annotations

import pytest

from custom.io import atomic_write, write_text


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

    from custom.io import default_bundle_root

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
