"""`dlx export --out` is an output folder like any other: a folder of the user's files is refused and left
byte-identical, a second export while one writes is refused, and model + export.json change as a pair: a kill -9
or a full disk during a re-export leaves the earlier export usable, or `dlx predict` refuses the folder."""
from __future__ import annotations

import json
import os
import stat
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests import forked
from tests.conftest import assert_user_error, run_dlx
from tests.services import require_service


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()}


def _images(folder):
    folder.mkdir()
    for i in range(3):
        Image.fromarray(((np.arange(64).reshape(8, 8) * (i + 1)) % 256).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def _predict(folder, images):
    return run_dlx("predict", folder / "model.onnx", images, "--json", timeout=120)


@pytest.fixture(scope="module")
def first_export(runs, tmp_path_factory):
    """An ONNX export of the CNN run, and what `dlx predict` answers with it."""
    folder = tmp_path_factory.mktemp("first") / "export"
    run_dlx("export", runs["cnn"], "--out", folder, check=0)
    images = _images(folder.parent / "images")
    return folder, images, json.loads(_predict(folder, images).stdout)["predictions"]


@pytest.fixture
def earlier(first_export, tmp_path):
    import shutil
    folder, images, predictions = first_export
    return shutil.copytree(folder, tmp_path / "export"), images, predictions


def test_export_into_a_folder_of_user_files_is_refused_and_they_stay_byte_identical(runs, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.onnx").write_bytes(b"the user's own model")
    (mine / "export.json").write_text('{"mine": true}\n')
    before = _snapshot(mine)
    assert_user_error(run_dlx("export", runs["cnn"], "--out", mine), str(mine), "did not write", "unchanged")
    assert _snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == sorted(before)


def test_a_second_export_while_one_writes_is_refused(runs, earlier):
    from dlx.train.outdir import OutputFolder
    folder = earlier[0]
    before = _snapshot(folder)
    with OutputFolder.acquire(folder, "export"):
        result = run_dlx("export", runs["mlp"], "--out", folder)
    assert_user_error(result, "being written by another dlx process", "Nothing was changed")
    assert {k: v for k, v in _snapshot(folder).items() if k != ".dlx-lock"} == before


def test_export_out_a_device_or_a_linked_record_is_refused(runs, earlier, tmp_path):
    if os.geteuid() == 0:
        device = tmp_path / "full"
        os.mknod(device, 0o600 | stat.S_IFCHR, os.makedev(1, 7))
        assert_user_error(run_dlx("export", runs["cnn"], "--out", device), str(device))
        assert stat.S_ISCHR(os.lstat(device).st_mode)
    folder = earlier[0]
    outside = tmp_path / "outside.json"
    outside.write_text("{}\n")
    (folder / "export.json").unlink()
    (folder / "export.json").symlink_to(outside)
    assert_user_error(run_dlx("export", runs["mlp"], "--out", folder), "symbolic link", "left it unchanged")
    assert (folder / "export.json").is_symlink() and outside.read_text() == "{}\n"


@pytest.mark.parametrize("step", ["verify", "atomic_write_json"])
def test_a_kill_during_re_export_keeps_the_earlier_export_or_predict_refuses(step, runs, earlier, tmp_path):
    """kill -9 while the new model is verified (it lies beside the old export.json on today's main), or just
    before its export.json is written: the old pair stays whole and predicts as before, or predict refuses."""
    folder, images, predictions = earlier
    before = _snapshot(folder)
    process = forked.Dlx(["export", runs["mlp"], "--out", folder], tmp_path / "log",
                         patches={f"dlx.export.api.{step}": _die()})
    assert process.wait(300) == -9, process.output()
    result = _predict(folder, images)
    pair = ("model.onnx", "export.json")  # besides them: the lock file and the killed export's hidden temporary
    if all((folder / name).is_file() and (folder / name).read_bytes() == before[name] for name in pair):
        assert result.returncode == 0 and json.loads(result.stdout)["predictions"] == predictions
    else:
        assert_user_error(result, "Export the model again")
    assert not [p for p in folder.iterdir() if ".tmp" in p.name and not p.name.startswith(".")]
    rerun = run_dlx("export", runs["mlp"], "--out", folder, timeout=300)  # and a new export goes through
    assert rerun.returncode == 0, rerun.stderr
    assert _predict(folder, images).returncode == 0
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # the killed export's temporary is gone


def _die():
    from tests.reliability.export_hooks import die
    return die


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of `size` bytes mounted at tmp_path/disk (root only), unmounted after the test."""
    mounted = []

    def mount(size: int):
        disk = tmp_path / "disk"
        disk.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True)
        require_service(done.returncode == 0, f"can't mount a tmpfs here ({done.stderr.decode().strip()})")
        mounted.append(disk)
        return disk
    yield mount
    for disk in mounted:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_full_disk_says_so_and_keeps_the_earlier_export(runs, earlier, small_disk):
    folder, images, predictions = earlier
    model_bytes = (folder / "model.onnx").stat().st_size
    disk = small_disk(model_bytes + 48 * 1024)  # room for one model and its bookkeeping, not for a second
    out = disk / "export"
    run_dlx("export", runs["cnn"], "--out", out, check=0, timeout=300)
    before = _snapshot(out)
    message = assert_user_error(run_dlx("export", runs["cnn"], "--out", out, timeout=300), str(out),
                                "the disk is full", "left as it was")
    assert "--format" not in message
    assert _snapshot(out) == before and not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert json.loads(_predict(out, images).stdout)["predictions"] == predictions


def test_a_full_disk_is_named_not_blamed_on_the_format_and_leaves_no_partial_model(runs, small_disk):
    out = small_disk(16 * 1024) / "export"  # the folder's bookkeeping fits, the model does not
    message = assert_user_error(run_dlx("export", runs["cnn"], "--out", out, timeout=300), str(out),
                                "the disk is full")
    assert "--format" not in message and "exporter" not in message
    assert not (out / "model.onnx").exists() and not (out / "export.json").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")] if out.exists() else True
