"""MLflow against the real thing: a real `mlflow server` (SQLite backend) on 127.0.0.1, `dlx train`, `dlx search`
and `dlx ensemble` logging to it, and everything read back through MLflow's own client. An unreachable server is
a warning (or, with --mlflow-required, exit code 2), and a missing MLflow a clear error.

MLflow is in the test extra; outside CI a missing one skips, in CI it fails (tests/services.py)."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, assert_user_error, run_dlx
from tests.services import require_service

TINY = ("--quiet", "--set", "train.epochs=2", "--set", "model.vars.width=8")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def require_mlflow() -> None:
    require_service(importlib.util.find_spec("mlflow") is not None,
                    "MLflow is not installed (pip install -e '.[test]' brings it)")


def _wait_for(url: str, process, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with code {process.returncode}")
        try:
            urllib.request.urlopen(url + "/health", timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"mlflow server did not answer at {url} within {seconds} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real MLflow tracking server with a SQLite store and served artefacts, for this module; stopped after."""
    require_mlflow()
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, process)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the server and the workers it started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def client(server):
    from mlflow.tracking import MlflowClient
    return MlflowClient(tracking_uri=server)


def mlflow_run_id(folder) -> str:
    return json.loads((folder / "provenance.json").read_text())["sessions"][-1]["mlflow"]["run_id"]


@pytest.mark.slow
def test_train_logs_params_metrics_summary_and_files(server, client, tmp_path):
    run = tmp_path / "run"
    run_dlx("train", "configs/digits.yaml", "--out", run, *TINY, "--mlflow", server,
            "--set", "train.log.mlflow.experiment=dlx-tests-train", check=0)
    logged = client.get_run(mlflow_run_id(run))
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    assert client.get_experiment(logged.info.experiment_id).name == "dlx-tests-train"
    assert logged.data.params["model.vars.width"] == "8" and logged.data.params["train.epochs"] == "2"
    assert logged.data.params["train.optimizer.name"] == "adam"
    history = client.get_metric_history(logged.info.run_id, "val_accuracy")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(m.step, m.value) for m in history] == [(r["epoch"], pytest.approx(r["val_accuracy"])) for r in rows]
    summary = json.loads((run / "summary.json").read_text())
    assert logged.data.metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert logged.data.metrics["best_epoch"] == summary["best_epoch"]
    files = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"config.yaml", "summary.json", "provenance.json", "metrics.csv", "split.json"} <= files
    assert logged.data.tags["dlx.folder"] == str(run.resolve()) and logged.data.tags["dlx.kind"] == "run"


@pytest.mark.slow
def test_resume_goes_on_logging_to_the_same_run(server, client, tmp_path):
    run = tmp_path / "run"
    run_dlx("train", "configs/digits.yaml", "--out", run, *TINY, "--mlflow", server, check=0)
    first = mlflow_run_id(run)
    run_dlx("train", "--resume", run, "--epochs", "3", "--quiet", check=0)
    assert mlflow_run_id(run) == first
    assert [m.step for m in client.get_metric_history(first, "val_accuracy")] == [1, 2, 3]
    assert client.get_run(first).info.status == "FINISHED"


@pytest.mark.slow
def test_search_trials_are_nested_runs_under_the_search(server, client, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(f"base: {ROOT / 'configs' / 'digits.yaml'}\noverrides: {{train.epochs: 1}}\nsampler: random\n"
                     "pruner: none\ntrials: 2\nparams:\n  model.vars.width: {choice: [4, 8]}\n")
    search = tmp_path / "search"
    run_dlx("search", space, "--out", search, "--workers", "2", "--quiet", "--mlflow", server, check=0)
    parent = client.get_run(mlflow_run_id(search))
    assert parent.info.status == "FINISHED" and parent.data.tags["dlx.kind"] == "search"
    assert parent.data.params["params.model.vars.width.choice"] == "[4, 8]"
    best = json.loads((search / "best.json").read_text())
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(best["value"])
    assert {"best.json", "leaderboard.csv", "search.yaml", "provenance.json"} <= \
        {a.path for a in client.list_artifacts(parent.info.run_id)}
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 2 and {r.data.params["model.vars.width"] for r in children} <= {"4", "8"}
    assert {r.info.run_id for r in children} == {mlflow_run_id(search / "trials" / n) for n in ("0", "1")}
    assert all(r.info.status == "FINISHED" and "val_accuracy" in r.data.metrics for r in children)


@pytest.mark.slow
def test_ensemble_logs_members_weights_and_scores(server, client, tmp_path):
    members = []
    for width in (4, 8):
        members.append(tmp_path / f"w{width}")
        run_dlx("train", "configs/digits.yaml", "--out", members[-1], "--quiet", "--set", "train.epochs=1",
                "--set", f"model.vars.width={width}", check=0)
    out = tmp_path / "ensemble"
    result = json.loads(run_dlx("ensemble", *members, "--out", out, "--json", "--mlflow", server,
                                "--mlflow-experiment", "dlx-tests-ensemble", check=0).stdout)
    logged = client.get_run(mlflow_run_id(out))
    assert client.get_experiment(logged.info.experiment_id).name == "dlx-tests-ensemble"
    for row in result["members"]:
        assert float(logged.data.params[f"member.{row['id']}.weight"]) == pytest.approx(row["weight"])
    assert logged.data.params["method"] == result["method"]
    assert logged.data.metrics["ensemble.test.accuracy"] == pytest.approx(result["results"]["ensemble"]["test"]
                                                                          ["accuracy"])
    assert {"ensemble.yaml", "ensemble.json", "provenance.json"} <= {a.path for a in client.list_artifacts(
        logged.info.run_id)}


def test_an_unreachable_server_is_a_warning_and_training_goes_on(tmp_path):
    require_mlflow()
    url = f"http://127.0.0.1:{free_port()}"
    result = run_dlx("train", "configs/digits.yaml", "--out", tmp_path / "run", *TINY, "--mlflow", url, check=0)
    assert f"warning: can't log to MLflow at {url}" in result.stderr and "going on without MLflow" in result.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "finished"
    assert "mlflow" not in json.loads((tmp_path / "run" / "provenance.json").read_text())["sessions"][0]


def test_an_unreachable_server_with_mlflow_required_is_an_error(tmp_path):
    require_mlflow()
    url = f"http://127.0.0.1:{free_port()}"
    result = run_dlx("train", "configs/digits.yaml", "--out", tmp_path / "run", *TINY, "--mlflow", url,
                     "--mlflow-required")
    assert_user_error(result, f"can't log to MLflow at {url}", "Logging is required", "--mlflow-required")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_mlflow_required_without_a_server_is_refused(tmp_path):
    assert_user_error(run_dlx("train", "configs/digits.yaml", "--out", tmp_path / "run", "--mlflow-required"),
                      "--mlflow-required needs a tracking server")


def test_missing_mlflow_is_a_clear_error_before_training(tmp_path):
    shadow = tmp_path / "shadow" / "mlflow"  # found first on PYTHONPATH: `import mlflow` fails as if absent
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('mlflow is not installed (simulated by the test)')\n")
    path = os.pathsep.join([str(tmp_path / "shadow"), str(ROOT)])
    result = run_dlx("train", "configs/digits.yaml", "--out", tmp_path / "run", *TINY, "--mlflow",
                     "http://127.0.0.1:1", env={"PYTHONPATH": path})
    assert_user_error(result, "asks for MLflow, but it is not installed", "dlx[mlflow]")
    assert not (tmp_path / "run").exists()
