"""Issue 21, items 3, 4 and 7: bounded reads and sizes, empty or one-class splits, arguments. Every case runs the
real `dlx` in a subprocess and expects exit code 2 with one paragraph naming the key and the limit, quickly."""
from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from tests.conftest import ROOT, assert_user_error, run_dlx
from tests.search.conftest import TINY_SPEC

MEMORY_LIMIT = 4 << 30  # bytes of address space: /dev/zero read without a bound would pass it in seconds
CONFIG = ROOT / "configs" / "digits.yaml"
TINY_RUN = ["--set", "model.layers=[Flatten, {Dense: {units: 16, activation: relu}}, {Dense: {units: classes}}]",
            "--set", "model.vars={}", "--set", "train.epochs=1", "--set", "device.type=cpu", "--quiet"]


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(*args, timeout: float = 20) -> subprocess.CompletedProcess:
    """`dlx ARGS` under a 4 GiB address-space limit (as `ulimit -v`), killed after `timeout` seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "dlx", *map(str, args)], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=timeout, preexec_fn=_limit_memory)


@pytest.fixture
def unreadable(tmp_path, request):
    """A path that is no regular file: /dev/zero, /dev/urandom, a FIFO nobody writes to, or a folder."""
    kind = request.param
    if kind == "fifo":
        path = tmp_path / "spec.yaml"
        os.mkfifo(path)
        return path
    if kind == "folder":
        (tmp_path / "spec.yaml").mkdir()
        return tmp_path / "spec.yaml"
    return kind


def _timed(*args) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = run_limited(*args)
    return result, time.monotonic() - started


@pytest.mark.slow  # eight fresh interpreters under a memory limit, timed
@pytest.mark.parametrize("command", ["config", "search"])
@pytest.mark.parametrize("unreadable", ["/dev/zero", "/dev/urandom", "fifo", "folder"], indirect=True)
def test_a_spec_that_is_no_regular_file_is_refused_within_a_second(command, unreadable, tmp_path):
    """About as fast as the same command refuses a missing file (its start-up: `dlx search` imports Optuna first),
    under a 4 GiB address-space limit: a ratio with a second's slack, as a busy machine slows both alike, while
    reading /dev/zero or waiting on a FIFO takes far longer or never ends."""
    _, baseline = _timed(command, tmp_path / "missing.yaml")
    result, elapsed = _timed(command, unreadable)
    assert_user_error(result, str(unreadable))
    assert "regular file" in result.stderr or "folder" in result.stderr, result.stderr
    assert elapsed < 2 * baseline + 1.0, (elapsed, baseline)


def _space(tmp_path, param: str):
    (tmp_path / "tiny.yaml").write_text(TINY_SPEC)
    path = tmp_path / "space.yaml"
    path.write_text(f"base: tiny.yaml\nsampler: grid\nparams:\n  {param}\n")
    return path


@pytest.mark.parametrize("param, key, count", [
    ("model.vars.width: {int: [1, 1000000000000]}", "params.model.vars.width", "1000000000000 values"),
    ("model.vars.dropout: {float: [0, 1], step: 1.0e-12}", "params.model.vars.dropout", "1000000000001 values"),
])
def test_an_absurd_grid_is_refused_before_it_is_listed(param, key, count, tmp_path):
    result = run_limited("search", _space(tmp_path, param), "--out", tmp_path / "search", timeout=30)
    assert_user_error(result, f"at '{key}'", count, "limited to 100000 values")


def test_a_grid_with_too_many_combinations_is_refused(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_SPEC)
    path = tmp_path / "space.yaml"
    path.write_text("base: tiny.yaml\nsampler: grid\nparams:\n  model.vars.width: {int: [1, 50000]}\n"
                    "  model.vars.dropout: {float: [0, 0.5], step: 0.01}\n")
    result = run_limited("search", path, "--out", tmp_path / "search", timeout=30)
    assert_user_error(result, "at 'params.model.vars.dropout'", "more than 1000000 combinations")


@pytest.mark.parametrize("value", ["[15000, 15000]", "15000"])
def test_an_image_size_over_the_limit_is_refused(value):
    result = run_limited("config", CONFIG, "--set", f"data.image_size={value}")
    assert_user_error(result, "at 'data.image_size'", "limited to 4096 pixels a side")


def test_activation_memory_is_estimated_before_a_batch_is_allocated(tmp_path):
    """Few parameters (one 1×1 Conv2D), but 65536 channels of 8×8 kept by 100 layers: terabytes per batch."""
    layers = ("[{Conv2D: {filters: 65536, kernel_size: 1}}, {Repeat: {times: 100, layers: [{Activation: relu}]}}, "
              "GlobalAveragePooling2D, {Dense: {units: classes}}]")
    result = run_dlx("train", CONFIG, "--set", f"model.layers={layers}", "--set", "model.vars={}",
                     "--set", "train.batch_size=1000000", "--set", "device.type=cpu", "--set", "train.epochs=1",
                     "--out", tmp_path / "run", timeout=120)
    assert_user_error(result, "at 'train.batch_size'", "GiB for activations", "of CPU memory")


@pytest.mark.slow
def test_a_checkpoint_recording_a_huge_input_is_refused_before_resizing(tmp_path):
    run_dlx("train", CONFIG, *TINY_RUN, "--out", tmp_path / "run", check=0)
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=True)
    state["data"]["input_shape"] = [1, 20000, 20000]
    torch.save(state, best)
    from PIL import Image
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    result = run_limited("predict", tmp_path / "run", tmp_path / "x.png", "--resize", timeout=60)
    assert_user_error(result, str(best), "20000×20000", "limit of 4096")


def test_an_empty_validation_split_is_refused_with_the_counts(tmp_path):
    result = run_dlx("train", CONFIG, *TINY_RUN, "--set", "data.test_split=0.999", "--out", tmp_path / "run",
                     timeout=120)
    assert_user_error(result, "at 'data.val_split'", "the validation split is empty",
                      "train 10, validation 0, test 1787 samples", "data.test_split (now 0.999)")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_one_class_test_split_is_refused_with_the_counts(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x_train=rng.random((40, 4), np.float32), y_train=np.arange(40) % 2,
             x_test=rng.random((6, 4), np.float32), y_test=np.zeros(6, np.int64))
    result = run_dlx("train", CONFIG, *TINY_RUN, "--set", "data.dataset=npz", "--set",
                     f"data.path={tmp_path / 'data.npz'}", "--out", tmp_path / "run", timeout=120)
    assert_user_error(result, "at 'data.path'", "the test split holds only class '0'", "test 6 samples")


@pytest.mark.parametrize("option, value", [("--trials", "0"), ("--trials", "-3"), ("--max-failures", "0"),
                                           ("--max-failures", "-1")])
def test_search_counts_below_one_are_refused(option, value, tmp_path):
    space = _space(tmp_path, "model.vars.width: {int: [8, 16], step: 8}")
    result = run_dlx("search", space, option, value, "--out", tmp_path / "search", timeout=60)
    assert_user_error(result, f"Invalid value for '{option}'", "x>=1")
    assert not (tmp_path / "search" / "study.db").exists()


def test_a_mysql_url_names_the_mysql_driver(tmp_path):
    if any(importlib.util.find_spec(name) for name in ("pymysql", "MySQLdb")):
        pytest.skip("a MySQL driver is installed here")
    space = _space(tmp_path, "model.vars.width: {int: [8, 16], step: 8}")
    result = run_dlx("search", space, "--storage", "mysql://user:secret@localhost/db", "--name", "x",
                     "--out", tmp_path / "search", timeout=60)
    text = assert_user_error(result, "at '--storage'", "pip install pymysql", "mysqlclient")
    assert "psycopg2" not in text and "secret" not in text


@pytest.mark.slow
def test_an_npz_data_path_that_is_a_device_says_so(tmp_path):
    result = run_limited("train", CONFIG, "--set", "data.dataset=npz", "--set", "data.path=/dev/zero",
                         "--out", tmp_path / "run", timeout=60)
    assert_user_error(result, "/dev/zero at 'data.path'", "not a regular file")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finished") / "run"
    run_dlx("train", CONFIG, *TINY_RUN, "--out", folder, check=0)
    return folder


@pytest.mark.parametrize("field, value", [("val_accuracy", "high"), ("epochs", [1]), ("wall_seconds", "-Infinity"),
                                          ("name", {"a": 1})])
def test_dlx_runs_lists_a_folder_with_a_damaged_summary_as_damaged_and_goes_on(field, value, finished_run, tmp_path):
    shutil.copytree(finished_run, tmp_path / "runs" / "good")
    shutil.copytree(finished_run, tmp_path / "runs" / "bad")
    summary_path = tmp_path / "runs" / "bad" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary[field] = value
    summary_path.write_text(json.dumps(summary))
    for sort in ("name", "val_accuracy", "epochs", "wall_seconds"):
        result = run_dlx("runs", tmp_path / "runs", "--json", "--sort", sort, check=0)
        rows = {row["path"].rsplit("/", 1)[-1]: row for row in json.loads(result.stdout)}
        assert rows["good"]["status"] == "finished" and rows["bad"]["status"] == "damaged", rows
        assert f"'{field}' should be" in rows["bad"]["problem"]
