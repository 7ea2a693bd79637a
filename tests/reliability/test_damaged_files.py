"""Damaged files in dlx's own folders: summary.json, metrics.jsonl, split.json, checkpoints, ensemble.yaml and
study.db filled with random bytes, cut short, or holding JSON values of the wrong type. Every reader either
works (exit 0) or refuses with exit code 2 and one paragraph naming the file, never a traceback.

The property tests run the real commands in-process (Typer's CliRunner) on a copy of a real run or ensemble
folder made once per module; the explicit tests run `dlx` as a user would and check the message."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dlx.cli.main import app
from tests.conftest import assert_user_error, run_dlx
from tests.reliability.conftest import DIGITS, TINY

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
ONE_EPOCH = [*TINY, "--set", "train.epochs=1"]

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def invoke(*args) -> object:
    """Run `dlx ARGS` in-process; the only outcomes allowed are exit 0 and exit 2, never an exception."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert result.exit_code in (0, 2) and "Traceback" not in result.output, result.output
    event(f"exit {result.exit_code}")  # --hypothesis-show-statistics: both outcomes occur
    return result


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two finished 1-epoch digits runs and their ensemble (made once: each takes seconds)."""
    root = tmp_path_factory.mktemp("damaged")
    for name, seed in (("a", 0), ("b", 1)):
        result = CliRunner().invoke(app, ["train", str(DIGITS), *ONE_EPOCH, "--set", f"seed={seed}",
                                          "--out", str(root / name)])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["ensemble", str(root / "a"), str(root / "b"), "--out", str(root / "ens")])
    assert result.exit_code == 0, result.output
    return root


def copy_of(folder: Path) -> Path:
    """A fresh copy of `folder` for one example (readers such as --resume write into the folder)."""
    target = Path(tempfile.mkdtemp(prefix="copy-", dir=folder.parent)) / folder.name  # pytest removes it
    shutil.copytree(folder, target)
    return target


def damaged_json(valid: dict, fields: list[str]):
    """Garbage for a JSON object file: random bytes, a cut-short copy, another JSON value, or one field retyped."""
    text = json.dumps(valid, indent=2).encode()
    return st.one_of(
        st.binary(max_size=200),
        st.integers(0, len(text) - 1).map(lambda n: text[:n]),
        JSON_VALUES.map(lambda value: json.dumps(value).encode()),
        st.tuples(st.sampled_from(fields), JSON_VALUES).map(
            lambda change: json.dumps({**valid, change[0]: change[1]}).encode()))


SUMMARY_FIELDS = ["status", "wall_seconds", "epochs", "best_epoch", "val_accuracy", "name", "stopped_early",
                  "warnings", "trainable_params"]


def damage(run, name: str, data, fields=None) -> None:
    """Replace the run's JSON file `name` with a damaged version of itself (fields: the keys to retype)."""
    valid = json.loads((run / name).read_text())
    (run / name).write_bytes(data.draw(damaged_json(valid, fields or sorted(valid))))


@given(data=st.data())
@settings(max_examples=20, **SETTINGS)
def test_resume_reads_any_summary_json_cleanly(folders, data):
    run = copy_of(folders / "a")
    damage(run, "summary.json", data, SUMMARY_FIELDS)
    invoke("train", "--resume", run)


@given(data=st.data())
@settings(max_examples=20, **SETTINGS)
def test_resume_reads_any_split_json_cleanly(folders, data):
    run = copy_of(folders / "a")
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))  # so resume reads split.json
    damage(run, "split.json", data)
    invoke("train", "--resume", run)


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=10, **SETTINGS)
def test_report_reads_any_summary_json_cleanly(folders, data):
    run = copy_of(folders / "a")
    damage(run, "summary.json", data, SUMMARY_FIELDS)
    invoke("report", run)


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=10, **SETTINGS)
def test_report_reads_any_metrics_jsonl_cleanly(folders, data):
    run = copy_of(folders / "a")
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    garbage = damaged_json(row, sorted(row)).map(lambda line: line.replace(b"\n", b" ") + b"\n")
    (run / "metrics.jsonl").write_bytes(data.draw(st.one_of(garbage, st.binary(max_size=200))))
    invoke("report", run)


CHECKPOINT_KEYS = ["model", "spec", "data", "data.mean", "data.std", "data.scale", "data.class_names",
                   "data.input_shape", "data.input", "data.input.min"]


def altered_checkpoint(state: dict, key: str, value, drop: bool) -> dict:
    """A copy of `state` with the entry at dotted `key` replaced by `value` (or removed)."""
    state = {**state, "data": {**state["data"], "input": dict(state["data"]["input"])}}
    *parents, last = key.split(".")
    holder = state
    for parent in parents:
        holder = holder[parent]
    if drop:
        holder.pop(last, None)
    else:
        holder[last] = value
    return state


@given(data=st.data())
@settings(max_examples=25, **SETTINGS)
def test_evaluate_reads_any_checkpoint_cleanly(folders, data):
    run = copy_of(folders / "a")
    path = run / "checkpoints" / "best.pt"
    raw = path.read_bytes()
    kind = data.draw(st.sampled_from(["bytes", "truncated", "entry"]))
    if kind == "bytes":
        path.write_bytes(data.draw(st.binary(max_size=300)))
    elif kind == "truncated":
        path.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1))])
    else:
        state = torch.load(path, weights_only=True)
        key, value = data.draw(st.sampled_from(CHECKPOINT_KEYS)), data.draw(JSON_VALUES)
        torch.save(altered_checkpoint(state, key, value, data.draw(st.booleans())), path)
    invoke("evaluate", run, "--split", "val")


@given(data=st.data())
@settings(max_examples=20, **SETTINGS)
def test_evaluate_reads_any_ensemble_yaml_cleanly(folders, data):
    ensemble = copy_of(folders / "ens")
    path = ensemble / "ensemble.yaml"
    raw = path.read_bytes()
    document = yaml.safe_load(raw)
    kind = data.draw(st.sampled_from(["bytes", "truncated", "document", "member"]))
    if kind == "bytes":
        path.write_bytes(data.draw(st.binary(max_size=300)))
    elif kind == "truncated":
        path.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1))])
    elif kind == "document":
        key = data.draw(st.sampled_from(["format", "members", "output_temperature", "method", "class_names"]))
        path.write_text(yaml.safe_dump({**document, key: data.draw(JSON_VALUES)}))
    else:
        key = data.draw(st.sampled_from(["weight", "temperature", "run", "checkpoint_sha256"]))
        document["members"][0][key] = data.draw(JSON_VALUES)
        path.write_text(yaml.safe_dump(document))
    invoke("evaluate", ensemble, "--split", "val")


@pytest.mark.slow
@given(garbage=st.binary(min_size=1, max_size=300))
@settings(max_examples=10, **SETTINGS)
def test_search_opens_any_study_db_cleanly(tmp_path_factory, garbage):
    folder = tmp_path_factory.mktemp("study")
    (folder / "study.db").write_bytes(garbage)
    space = folder / "space.yaml"
    space.write_text(yaml.safe_dump({"base": str(DIGITS), "trials": 1, "params": {"train.optimizer.lr": {
        "float": [1.0e-3, 1.0e-2]}}, "overrides": {"train.epochs": 1, "model.vars.width": 4}}))
    invoke("search", space, "--storage", f"sqlite:///{folder / 'study.db'}", "--out", folder / "search", "-q")


# One damaged file each, through `dlx` itself: exit 2 and a message naming the file and the field.

def test_resume_refuses_a_summary_json_that_is_a_list(folders):
    run = copy_of(folders / "a")
    (run / "summary.json").write_text("[1, 2, 3]\n")
    assert_user_error(run_dlx("train", "--resume", run), f"{run / 'summary.json'}", "expected a JSON object")


def test_resume_refuses_a_summary_json_with_a_wrong_wall_seconds(folders):
    run = copy_of(folders / "a")
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted", "wall_seconds": "long"}))
    assert_user_error(run_dlx("train", "--resume", run), f"{run / 'summary.json'} at 'wall_seconds'",
                      "should be a number, but is str 'long'")


def test_report_refuses_a_summary_json_with_a_wrong_type(folders):
    run = copy_of(folders / "a")
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "epochs": "one"}))
    assert_user_error(run_dlx("report", run), f"{run / 'summary.json'} at 'epochs'", "should be an integer")


def test_report_refuses_a_metrics_jsonl_with_a_wrong_type(folders):
    run = copy_of(folders / "a")
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    (run / "metrics.jsonl").write_text(json.dumps({**row, "val_loss": "low"}) + "\n")
    assert_user_error(run_dlx("report", run), f"{run / 'metrics.jsonl'}:1 at 'val_loss'", "should be a number")


def test_resume_refuses_a_split_json_that_is_a_list(folders):
    run = copy_of(folders / "a")
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    (run / "split.json").write_text("[]")
    assert_user_error(run_dlx("train", "--resume", run), f"{run / 'split.json'}", "expected a JSON object")


@pytest.mark.parametrize("key, value, drop, message", [
    ("spec", None, True, "'spec' entry is missing"),
    ("data", None, True, "'data' entry is missing"),
    ("model", None, True, "'model' entry is missing"),
    ("data.mean", "0.5", False, "at 'data.mean': must be a non-empty list of finite numbers, but is '0.5'"),
])
def test_evaluate_refuses_a_checkpoint_missing_or_mistyping_an_entry(folders, key, value, drop, message):
    run = copy_of(folders / "a")
    path = run / "checkpoints" / "best.pt"
    torch.save(altered_checkpoint(torch.load(path, weights_only=True), key, value, drop), path)
    assert_user_error(run_dlx("evaluate", run), str(path), message)


def test_evaluate_refuses_an_ensemble_yaml_with_a_non_numeric_weight(folders):
    ensemble = copy_of(folders / "ens")
    document = yaml.safe_load((ensemble / "ensemble.yaml").read_text())
    document["members"][0]["weight"] = "heavy"
    (ensemble / "ensemble.yaml").write_text(yaml.safe_dump(document))
    assert_user_error(run_dlx("evaluate", ensemble), f"{ensemble / 'ensemble.yaml'} at 'members[0].weight'",
                      "must be a finite number >= 0, but got 'heavy'")


def test_search_refuses_a_study_db_that_is_not_a_database(tmp_path):
    study = tmp_path / "study.db"
    study.write_bytes(b"this is not a database\n" * 100)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"base": str(DIGITS), "trials": 1, "params": {"train.optimizer.lr": {
        "float": [1.0e-3, 1.0e-2]}}}))
    assert_user_error(run_dlx("search", space, "--storage", f"sqlite:///{study}", "--out", tmp_path / "s", "-q"),
                      f"{study}: the study storage is damaged or is not a database")
