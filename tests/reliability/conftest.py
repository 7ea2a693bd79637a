"""Reliability helpers: tiny specs, and `assert_intact(folder)`, which reads every file the way a reader would."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import ROOT, run_dlx
from tests.postgres_server import postgres_url  # noqa: F401 - the shared PostgreSQL server fixture

DIGITS = ROOT / "configs" / "digits.yaml"
TINY = ["--set", "model.vars.width=4", "--set", "device.type=cpu", "--set", "device.threads=1"]
SEED = 20261125  # every random kill moment is drawn from random.Random(SEED + scenario)


def rng(scenario: int) -> random.Random:
    return random.Random(SEED + scenario)


def is_temp_name(path: Path) -> bool:
    """atomic_write's temporary files: hidden and named `.<target>.<random>.tmp`."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def assert_intact(folder: Path) -> dict:
    """Every file under `folder` that a reader would take for whole is whole: JSON/JSONL parse, YAML parses,
    checkpoints load with weights_only=True, .npz load without pickle, SQLite studies pass an integrity check.
    A leftover temporary file is allowed only under a hidden temp name. Returns counts by kind."""
    seen: dict[str, int] = {}
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        if is_temp_name(path):
            seen["temp"] = seen.get("temp", 0) + 1
            continue
        assert ".tmp" not in path.name, f"a temporary file with a non-temporary name: {path}"
        kind = path.suffix
        if kind == ".json":
            json.loads(path.read_text())
        elif kind == ".jsonl":
            [json.loads(line) for line in path.read_text().splitlines()]
        elif kind == ".yaml":
            yaml.safe_load(path.read_text())
        elif kind == ".pt":
            state = torch.load(path, weights_only=True)
            assert state["format"] == "dlx-checkpoint-1" and state["model"], path
        elif kind == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                [archive[name] for name in archive.files]
        elif kind == ".db":
            import sqlite3
            with sqlite3.connect(path) as connection:
                assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok", path
        seen[kind] = seen.get(kind, 0) + 1
    return seen


@pytest.fixture
def tiny_space(tmp_path):
    """A search space on the tiny digits MLP of tests/search (1-epoch trials, about a second each)."""
    from tests.search.conftest import TINY_SPEC

    def make(header: str, name: str = "space.yaml") -> Path:
        (tmp_path / "tiny.yaml").write_text(TINY_SPEC.replace("device: cpu", "device: {type: cpu, threads: 1}"))
        path = tmp_path / name
        path.write_text("base: tiny.yaml\n" + header + "params:\n  train.optimizer.lr: {float: [1.0e-3, 5.0e-2], "
                        "log: true}\n  model.vars.width: {int: [8, 16], step: 8}\n")
        return path
    return make


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 1-epoch digits run (made once a module: it takes seconds), for tests that damage copies of it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    run_dlx("train", DIGITS, *TINY, "--set", "train.epochs=1", "--out", run, "--quiet", check=0)
    return run
