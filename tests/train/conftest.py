"""Train-CLI test helpers: `dlx(...)` in-process through the real Typer app, tiny spec files, metrics rows."""
from __future__ import annotations

import json
import shutil

import pytest
from dataset_files import TINY_CNN, write_npz
from typer.testing import CliRunner

from dlx.train.rundir import TIMING_COLUMNS


def dlx(*args):
    """Run a dlx command in this process, through the same Typer app and error boundary as `dlx`; 200 columns, as
    `run_dlx` has, so that rich does not fold a long tmp path in the `run folder:` line over two lines."""
    from dlx.cli.main import app
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def spec_file(tmp_path, data: str, model: str = TINY_CNN, train: str = "epochs: 1, batch_size: 16") -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: cli\nseed: 0\ndata: {data}\n{model}\ntrain: {{{train}}}\n"
                    "device: {type: cpu, threads: 1}\n")
    return str(path)


def metric_rows(run_dir):
    """metrics.jsonl without its timing columns (which differ between two runs of the same thing)."""
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_COLUMNS}
            for line in lines]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A finished one-epoch run of the tiny CNN on a small .npz, trained once per module: copy it to change it."""
    root = tmp_path_factory.mktemp("trained")
    npz = write_npz(root / "d.npz")
    result = dlx("train", spec_file(root, f"{{dataset: npz, path: {npz}}}"), "--out", root / "run", "--quiet")
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture
def finished_run(trained_run, tmp_path):
    """This test's own copy of `trained_run`."""
    return shutil.copytree(trained_run, tmp_path / "run")
