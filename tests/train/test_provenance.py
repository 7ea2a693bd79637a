"""provenance.json: every run says how it was made (command, code, packages, host, device, times, data, seed);
`dlx train --resume` appends a session and leaves the earlier ones as they were."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_dlx

TINY = ("--quiet", "--set", "train.epochs=1", "--set", "model.vars.width=8")


def sessions(folder) -> list[dict]:
    data = json.loads((folder / "provenance.json").read_text())
    assert data["format"] == 1
    return data["sessions"]


def test_a_run_records_how_it_was_made(tmp_path):
    run_dlx("train", "configs/digits.yaml", "--out", tmp_path / "run", *TINY, check=0)
    [session] = sessions(tmp_path / "run")
    assert session["command"][1:] == ["train", "configs/digits.yaml", "--out", str(tmp_path / "run"), *TINY]
    assert session["status"] == "finished" and session["started"] <= session["ended"]
    assert session["seed"] == 0 and session["device"] == "cpu"
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert session["data_fingerprint"] == split["fingerprint"]
    assert session["packages"]["torch"] and session["packages"]["numpy"] and session["python"]
    assert session["spec_file"] == str(ROOT / "configs" / "digits.yaml") and session["dlx_version"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_git_commit_and_dirty_flag_of_the_spec_s_tree(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "configs" / "digits.yaml", repo / "spec.yaml")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "spec.yaml"], ["commit", "-qm", "spec"]):
        subprocess.run([*git, *args], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    run_dlx("train", repo / "spec.yaml", "--out", tmp_path / "clean", *TINY, check=0)
    assert sessions(tmp_path / "clean")[0]["git"] == {"commit": commit, "dirty": False, "root": str(repo)}
    with (repo / "spec.yaml").open("a") as spec:
        spec.write("# changed\n")
    run_dlx("train", repo / "spec.yaml", "--out", tmp_path / "dirty", *TINY, check=0)
    assert sessions(tmp_path / "dirty")[0]["git"]["dirty"] is True


def test_resume_appends_a_session_and_keeps_the_first(tmp_path):
    run = tmp_path / "run"
    run_dlx("train", "configs/digits.yaml", "--out", run, *TINY, check=0)
    first = sessions(run)
    run_dlx("train", "--resume", run, "--epochs", "2", "--quiet", check=0)
    later = sessions(run)
    assert len(later) == 2 and later[0] == first[0]
    assert later[1]["command"][1:4] == ["train", "--resume", str(run)] and later[1]["status"] == "finished"


def test_search_and_ensemble_folders_have_provenance(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(f"base: {ROOT / 'configs' / 'digits.yaml'}\noverrides: {{train.epochs: 1}}\nsampler: random\n"
                     "pruner: none\ntrials: 2\nparams:\n  model.vars.width: {choice: [4, 8]}\n")
    run_dlx("search", space, "--out", tmp_path / "search", "--quiet", check=0)
    [search] = sessions(tmp_path / "search")
    assert search["status"] == "finished" and search["spec_file"] == str(space)
    assert search["data_fingerprint"] == sessions(tmp_path / "search" / "trials" / "0")[0]["data_fingerprint"]
    assert sessions(tmp_path / "search" / "trials" / "1")[0]["spec_file"] == str(space)
    trials = [tmp_path / "search" / "trials" / n for n in ("0", "1")]
    run_dlx("ensemble", *trials, "--out", tmp_path / "ensemble", "--json", check=0)
    [ensemble] = sessions(tmp_path / "ensemble")
    assert ensemble["status"] == "finished" and ensemble["data_fingerprint"] == search["data_fingerprint"]


def test_dlx_help_imports_no_mlflow():
    code = "import sys, dlx.cli.main; assert 'mlflow' not in sys.modules, 'mlflow imported by the CLI'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def _append_sessions(folder: str, updates: int) -> None:
    from dlx.train.provenance import recorded
    with recorded(folder, "search") as record:
        for step in range(updates):
            record.update(device=f"step-{step}")


def test_processes_sharing_a_folder_keep_every_session(tmp_path):
    """A search's workers (and machines joining one search) append to one provenance.json at once: none of
    their sessions may be lost to another's rewrite."""
    import multiprocessing
    from dlx.train.provenance import read_provenance
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_sessions, args=(str(tmp_path), 40)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    sessions = read_provenance(tmp_path)["sessions"]
    assert sorted(s["pid"] for s in sessions) == sorted(w.pid for w in workers)
    assert all(s["status"] == "finished" and s["device"] == "step-39" for s in sessions)
