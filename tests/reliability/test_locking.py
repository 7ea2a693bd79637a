"""One writer per folder: a command writing a folder holds an exclusive flock on its `.dlx-lock`, so a second
`dlx train --out X` or `--resume X` is refused at once (exit code 2, naming the holder's pid and host) while the
first finishes with its own results intact. Readers never wait for the lock, and a killed holder's lock is gone
with it (the kernel drops it)."""
from __future__ import annotations

import json
import socket
import time

import pytest

from tests.forked import Dlx, run
from tests.search.conftest import TINY_SPEC

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("heavy")]  # timed races between processes

EPOCHS = 60  # long enough (seconds) for a second process to start while the first trains


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPEC.replace("device: cpu", "device: {type: cpu, threads: 1}"))
    return path


def training(folder, process: Dlx, timeout: float = 120) -> None:
    """Wait until `process` trains into `folder`: its summary names it and an epoch is written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.alive(), process.output()
        try:
            pid = json.loads((folder / "summary.json").read_text())["pid"]
        except (OSError, ValueError, KeyError):
            pid = None
        if pid == process.pid and (folder / "checkpoints" / "best.pt").exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"{process.pid} never trained into {folder}:\n{process.output()}")


def assert_refused_by(output: str, code: int, holder: Dlx) -> None:
    assert code == 2 and "Traceback" not in output, output
    flat = " ".join(output.split())
    assert "is being written by another dlx process" in flat, output
    assert f"pid {holder.pid} on host {socket.gethostname()}" in flat, output
    assert holder.alive(), "the first process had already finished: the refusal proved nothing"


def epochs_of(run_dir) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_second_train_into_the_same_out_is_refused_and_the_first_keeps_its_results(spec, tmp_path):
    out = tmp_path / "run"
    first = Dlx(["train", spec, "--out", out, "--set", f"train.epochs={EPOCHS}"], tmp_path / "first.log")
    training(out, first)
    started = time.monotonic()
    code, output = run(["train", spec, "--out", out, "--set", "seed=1", "--set", "train.epochs=1"],
                       tmp_path / "second.log", timeout=120)
    assert_refused_by(output, code, first)
    assert time.monotonic() - started < 30, "the second writer waited instead of being refused at once"
    assert first.wait() == 0, first.output()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["pid"] == first.pid
    assert epochs_of(out) == list(range(1, EPOCHS + 1))
    assert f"test_accuracy {summary['test_accuracy']:.4f}" in first.output()  # it printed its own result
    assert "seed: 0" in (out / "config.yaml").read_text()
    assert not (out / ".dlx-lock").exists()


def test_a_second_resume_of_one_run_is_refused(spec, tmp_path):
    out = tmp_path / "run"
    code, output = run(["train", spec, "--out", out, "--quiet"], tmp_path / "start.log")
    assert code == 0, output
    args = ["train", "--resume", out, "--epochs", str(EPOCHS)]
    first = Dlx(args, tmp_path / "first.log")
    training(out, first)
    while epochs_of(out) == [1]:  # the first resumed epoch is written: training has started again
        assert first.alive(), first.output()
        time.sleep(0.05)
    code, output = run(args, tmp_path / "second.log", timeout=120)
    assert_refused_by(output, code, first)
    assert first.wait() == 0, first.output()
    assert epochs_of(out) == list(range(1, EPOCHS + 1))  # each epoch trained once, by one process


def test_readers_never_wait_and_a_killed_writer_leaves_no_lock(spec, tmp_path):
    out = tmp_path / "run"
    writer = Dlx(["train", spec, "--out", out, "--set", f"train.epochs={EPOCHS}"], tmp_path / "writer.log")
    training(out, writer)
    for reader in (["runs", out, "--json"], ["evaluate", out, "--json"]):
        started = time.monotonic()
        code, output = run(reader, tmp_path / "reader.log", timeout=120)
        assert code == 0, output
        assert time.monotonic() - started < 30, f"{reader[0]} waited for the writer"
    assert writer.alive(), "the writer finished before the readers ran: they proved nothing"
    assert writer.kill()
    assert f"pid {writer.pid} " in (out / ".dlx-lock").read_text()  # a kill -9 leaves the file, not the lock
    code, output = run(["train", "--resume", out, "--quiet"], tmp_path / "resume.log")
    assert code == 0, output
    assert epochs_of(out) == list(range(1, EPOCHS + 1))
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"
