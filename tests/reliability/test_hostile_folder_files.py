"""Folder files that are not what they seem: summary.json, split.json, provenance.json, .dlx-folder.json,
metrics.jsonl and the checkpoints replaced by a FIFO, a link to /dev/zero or /dev/urandom, a file over the size
limit, or JSON nested 100,000 deep. Readers open regular files only and read a bounded amount, so each command
either lists the folder as damaged (`dlx runs`, which goes on with the others) or refuses with exit code 2 and
one paragraph naming the file; none hangs or fills memory. `${...}` expressions are bounded the same way."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import assert_user_error, run_dlx
from tests.reliability.conftest import DIGITS
from tests.reliability.stand_ins import put

HANG = 60  # seconds: every command here ends in a few; a blocked open or an endless read would not
def copy_of(run: Path) -> Path:
    target = Path(tempfile.mkdtemp(prefix="copy-", dir=run.parent)) / run.name  # pytest removes it
    shutil.copytree(run, target)
    return target


@pytest.mark.parametrize("kind", ["fifo", "zero", "urandom", "deep", "huge"])
def test_runs_lists_a_folder_with_a_hostile_summary_as_damaged_and_goes_on(finished_run, kind):
    root = copy_of(finished_run).parent
    shutil.copytree(root / "run", root / "other")
    put(root / "run" / "summary.json", kind)
    result = run_dlx("runs", root, "--json", timeout=HANG, check=0)
    rows = {Path(row["path"]).name: row for row in json.loads(result.stdout)}
    assert rows["run"]["status"] == "damaged" and "summary.json" in rows["run"]["problem"], rows["run"]
    assert rows["other"]["status"] == "finished", rows["other"]


@pytest.mark.parametrize("kind", ["fifo", "zero", "deep"])
@pytest.mark.parametrize("name", ["summary.json", "split.json", "provenance.json", ".dlx-folder.json"])
def test_resume_refuses_a_hostile_folder_file_naming_it(finished_run, name, kind):
    run = copy_of(finished_run)
    put(run / name, kind)
    assert_user_error(run_dlx("train", "--resume", run, "--epochs", "2", "--quiet", timeout=HANG), name)


@pytest.mark.parametrize("kind", ["fifo", "zero", "deep"])
def test_report_reads_no_hostile_metrics_file(finished_run, kind):
    """A pipe or a device in place of the metrics files is no metrics file (the report says there are no curves);
    JSON lines nested too deep are refused, naming the file."""
    run = copy_of(finished_run)
    for name in ("metrics.jsonl", "metrics.csv"):
        put(run / name, kind)
    result = run_dlx("report", run, timeout=HANG)
    if kind == "deep":
        assert_user_error(result, "metrics.jsonl", "nested more than")
    else:
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_evaluate_refuses_a_checkpoint_that_is_not_a_regular_file(finished_run, kind):
    run = copy_of(finished_run)
    put(run / "checkpoints" / "best.pt", kind)
    result = run_dlx("evaluate", run, timeout=HANG)
    assert_user_error(result, "best.pt", "not a regular file")


def test_a_100k_term_expression_is_refused_at_its_key(tmp_path):
    spec = yaml.safe_load(DIGITS.read_text())
    spec["model"]["layers"][0]["Conv2D"]["filters"] = "${" + "+".join(["1"] * 100_000) + "}"
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    for command in ("config", "summary"):
        assert_user_error(run_dlx(command, path, timeout=HANG), "spec.yaml", "model.layers[0]", "too long")
