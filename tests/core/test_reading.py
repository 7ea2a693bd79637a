"""core.reading, the bounded reader every folder-file reader goes through: regular files only (a FIFO is refused
without blocking, a device without reading it), at most the size limit, JSON at most the depth limit; a missing
file stays FileNotFoundError. And core.files.read_json on top of it."""
from __future__ import annotations

import json
import os

import pytest

from dlx.core.errors import DlxError
from dlx.core.files import read_json
from dlx.core.reading import MAX_JSON_DEPTH, NotJson, load_json, nesting_depth, read_bytes


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "summary.json"
    os.mkfifo(fifo)  # no writer: a plain open() for reading would wait for one for ever
    with pytest.raises(DlxError, match="not a regular file .a FIFO") as caught:
        load_json(fifo)
    assert caught.value.file == str(fifo)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_link_to_a_device_is_refused_unread(tmp_path, device):
    link = tmp_path / "split.json"
    link.symlink_to(device)
    with pytest.raises(DlxError, match="not a regular file .a character device"):
        read_bytes(link)


def test_a_file_over_the_limit_is_refused_not_cut(tmp_path):
    path = tmp_path / "provenance.json"
    path.write_text(json.dumps(["x" * 100]))
    with pytest.raises(DlxError, match="over 50 bytes"):
        read_bytes(path, limit=50)
    assert read_bytes(path, limit=len(path.read_bytes())) == path.read_bytes()


def test_json_deeper_than_the_limit_is_refused_below_and_above_the_recursion_limit(tmp_path):
    path = tmp_path / ".dlx-folder.json"
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        path.write_text("[" * depth + "]" * depth)
        with pytest.raises(NotJson, match=f"nested more than {MAX_JSON_DEPTH} levels"):
            load_json(path)
    path.write_text("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    assert nesting_depth(load_json(path), MAX_JSON_DEPTH) == MAX_JSON_DEPTH


def test_a_missing_file_stays_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_json(tmp_path / "missing.json")


def test_read_json_gives_the_default_for_damage_and_refuses_what_is_no_file(tmp_path):
    path = tmp_path / "best.json"
    assert read_json(path, {}) == {}
    for damaged in (b"{", b"\xff\xfe", b"[" * 5000 + b"]" * 5000):
        path.write_bytes(damaged)
        assert read_json(path, "default") == "default"
    path.write_text('{"trial": 3}')
    assert read_json(path) == {"trial": 3}
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(DlxError, match="best.json"):
        read_json(path, {})
