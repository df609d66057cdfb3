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
