"""`dlx runs` lists real run folders, survives damaged ones, and spots dead 'running' runs."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import assert_user_error, run_dlx


def train_tiny(folder, *sets):
    flags = sum((["--set", s] for s in ("train.epochs=1", "model.vars.width=8", *sets)), [])
    run_dlx("train", "configs/digits.yaml", "--out", folder, "--quiet", *flags, check=0)


def test_runs_lists_finished_damaged_and_running(tmp_path):
    root = tmp_path / "runs"
    train_tiny(root / "good")
    (root / "broken").mkdir(parents=True)
    (root / "broken" / "summary.json").write_text("{not json")
    (root / "broken" / "config.yaml").write_text("name: broken\n")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket
        for name, pid in (("alive", live.pid), ("dead", 999_999)):
            (root / name).mkdir()
            (root / name / "summary.json").write_text(json.dumps(
                {"name": name, "status": "running", "pid": pid, "host": socket.gethostname()}))
        rows = {r["path"].rsplit("/", 1)[-1]: r for r in json.loads(run_dlx("runs", root, "--json", check=0).stdout)}
    finally:
        live.kill()
    assert rows["good"]["status"] == "finished" and rows["good"]["trainable_params"] > 0
    assert 0 <= rows["good"]["val_accuracy"] <= 1 and rows["good"]["dataset"] == "digits"
    assert rows["broken"]["status"] == "damaged"
    assert rows["alive"]["status"] == "running"
    assert rows["dead"]["status"] == "interrupted"
    table = run_dlx("runs", root, check=0).stdout
    assert "damaged" in table and "finished" in table


def test_runs_on_empty_folder_and_filters(tmp_path):
    (tmp_path / "empty").mkdir()
    assert json.loads(run_dlx("runs", tmp_path / "empty", "--json", check=0).stdout) == []
    assert_user_error(run_dlx("runs", tmp_path / "empty", "--sort", "val_acc"), "Did you mean 'val_accuracy'")
    assert_user_error(run_dlx("runs", tmp_path / "missing"), "no such folder")
