"""core.diskfull: a full disk is recognised however the failed write reports it, and only then."""
from __future__ import annotations

import errno

import pytest

from dlx.core.diskfull import full_disk_error, full_disk_reason
from tests.tmpfs import fill, tmpfs

TORCH_TEXT = ("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file data/0: "
              "file write failed")


@pytest.fixture
def full_disk(tmp_path):
    with tmpfs(tmp_path / "disk", "64k") as folder:
        fill(folder)
        yield folder


def test_enospc_anywhere_in_the_chain_is_a_full_disk(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("unexpected pos 704 vs 598")  # torch.save over a file object, as on a full tmpfs
    except RuntimeError as exc:
        assert full_disk_reason(exc, tmp_path / "last.pt") == "No space left on device"
    error = full_disk_error(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path / "split.json", "split.json")
    assert "could not write split.json: the disk is full (Disk quota exceeded)" in str(error)
    assert error.file == str(tmp_path / "split.json")


def test_torchs_writer_text_is_a_full_disk_only_where_the_disk_is_full(full_disk, tmp_path):
    assert full_disk_reason(RuntimeError(TORCH_TEXT), full_disk / "last.pt") == "No space left on device"
    assert full_disk_reason(RuntimeError(TORCH_TEXT), tmp_path / "last.pt") is None  # room there: another failure
    assert full_disk_reason(OSError(errno.EIO, "Input/output error"), full_disk / "last.pt") is None
    assert full_disk_reason(RuntimeError("CUDA out of memory"), full_disk / "last.pt") is None
