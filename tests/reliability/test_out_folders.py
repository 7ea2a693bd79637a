"""`--out` never clobbers: a folder holding the user's files, or a dlx folder of another kind, is refused with exit
code 2 naming what is there, and every byte in it stays as it was. Each folder dlx writes says what it is in its
marker (`.dlx-folder.json`); run folders written before markers existed are still recognised as runs. A command
that fails before it wrote anything of value removes the folders it made, and only those."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import assert_user_error, run_dlx
from tests.forked import run
from tests.search.conftest import TINY_SPEC

SPACE = """\
base: tiny.yaml
sampler: random
trials: 1
params:
  train.optimizer.lr: {float: [1.0e-3, 5.0e-2], log: true}
"""


def snapshot(folder) -> dict:
    """Every file (hidden ones too) and folder under `folder`: {relative path: bytes, or None for a folder}."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def refused(args, log, *fragments) -> str:
    """Run `dlx ARGS`: exit code 2, one paragraph holding every fragment, no traceback."""
    code, output = run(args, log, timeout=120)
    flat = " ".join(output.split())
    assert code == 2 and "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in flat, f"{fragment!r} not in:\n{output}"
    return flat


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two finished one-epoch runs (r0, r1), an ensemble of them, and the tiny spec and a search space beside."""
    root = tmp_path_factory.mktemp("out_folders")
    (root / "tiny.yaml").write_text(TINY_SPEC.replace("device: cpu", "device: {type: cpu, threads: 1}"))
    (root / "space.yaml").write_text(SPACE)
    for seed in (0, 1):
        code, output = run(["train", root / "tiny.yaml", "--out", root / f"r{seed}", "--quiet", "--set",
                            f"seed={seed}"], root / f"r{seed}.log")
        assert code == 0, output
    code, output = run(["ensemble", root / "r0", root / "r1", "--out", root / "ens", "--method", "average"],
                       root / "ens.log")
    assert code == 0, output
    return root


def user_folder(tmp_path, names) -> object:
    folder = tmp_path / "mine"
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"the user's own {name}\n")
    return folder


@pytest.mark.slow
def test_every_output_folder_says_what_it_is(folders, tmp_path):
    code, output = run(["report", folders / "r0", "--out", tmp_path / "report"], tmp_path / "report.log")
    assert code == 0, output
    code, output = run(["search", folders / "space.yaml", "--out", tmp_path / "search"], tmp_path / "search.log")
    assert code == 0, output
    for folder, kind in ((folders / "r0", "run"), (folders / "ens", "ensemble"), (tmp_path / "report", "report"),
                         (tmp_path / "search", "search"), (tmp_path / "search" / "trials" / "0", "run")):
        assert json.loads((folder / ".dlx-folder.json").read_text())["kind"] == kind
        assert not (folder / ".dlx-lock").exists(), "a finished command left its lock file"


def test_train_into_a_folder_of_user_files_is_refused_and_they_stay_byte_identical(folders, tmp_path):
    mine = user_folder(tmp_path, ["config.yaml", "summary.json", "metrics.csv"])
    before = snapshot(mine)
    refused(["train", folders / "tiny.yaml", "--out", mine, "--quiet"], tmp_path / "train.log",
            f"{mine}: this folder holds files that dlx did not write: config.yaml, metrics.csv, summary.json",
            "left unchanged")
    assert snapshot(mine) == before


def test_a_second_run_without_last_pt_is_refused_and_the_first_run_is_kept(folders, tmp_path):
    out = tmp_path / "run"
    args = ["train", folders / "tiny.yaml", "--out", out, "--quiet", "--set", "output.save_last=false"]
    code, output = run(args, tmp_path / "first.log")
    assert code == 0, output
    before = snapshot(out)
    refused([*args, "--set", "seed=1"], tmp_path / "second.log", f"{out} already holds a run", "--resume")
    assert snapshot(out) == before


def test_search_into_a_folder_of_user_files_is_refused_and_they_stay_byte_identical(folders, tmp_path):
    mine = user_folder(tmp_path, ["leaderboard.csv", "best.json", "best.yaml", "trials/0/notes.txt"])
    before = snapshot(mine)
    refused(["search", folders / "space.yaml", "--out", mine, "--quiet"], tmp_path / "search.log",
            "this folder holds files that dlx did not write: best.json, best.yaml, leaderboard.csv, trials")
    assert snapshot(mine) == before


@pytest.mark.parametrize("case", ["ensemble_into_a_run", "train_into_an_ensemble", "search_into_a_run",
                                  "report_into_a_run"])
def test_a_dlx_folder_of_another_kind_is_refused_and_left_byte_identical(case, folders, tmp_path):
    target, args, found, wanted = {
        "ensemble_into_a_run": ("r0", ["ensemble", folders / "r0", folders / "r1"], "a run", "an ensemble"),
        "train_into_an_ensemble": ("ens", ["train", folders / "tiny.yaml", "--quiet"], "an ensemble", "a run"),
        "search_into_a_run": ("r0", ["search", folders / "space.yaml", "--quiet"], "a run", "a search"),
        "report_into_a_run": ("r1", ["report", folders / "r0"], "a run", "a report"),
    }[case]
    before = {name: snapshot(folders / name) for name in ("r0", "r1", "ens")}
    refused([*args, "--out", folders / target], tmp_path / "log", f"this is {found} folder, not {wanted}",
            "left unchanged")
    assert {name: snapshot(folders / name) for name in ("r0", "r1", "ens")} == before


def test_a_run_folder_from_before_markers_is_still_a_run(folders, tmp_path):
    legacy = tmp_path / "legacy"
    shutil.copytree(folders / "r0", legacy)
    (legacy / ".dlx-folder.json").unlink()
    before = snapshot(legacy)
    refused(["ensemble", folders / "r1", legacy, "--out", legacy], tmp_path / "ensemble.log",
            "this is a run folder, not an ensemble")
    refused(["train", folders / "tiny.yaml", "--out", legacy, "--quiet"], tmp_path / "train.log",
            f"{legacy} already holds a run")
    assert snapshot(legacy) == before
    code, output = run(["train", "--resume", legacy, "--epochs", "2", "--quiet"], tmp_path / "resume.log")
    assert code == 0, output
    assert json.loads((legacy / ".dlx-folder.json").read_text())["kind"] == "run"
    assert [json.loads(line)["epoch"] for line in (legacy / "metrics.jsonl").read_text().splitlines()] == [1, 2]


MISSING_DATA = ["--set", "data.dataset=npz", "--set", "data.path=/nonexistent/d.npz", "--quiet"]


def test_a_train_that_fails_before_training_leaves_no_folder_it_made(folders, tmp_path):
    (tmp_path / "kept").mkdir()  # the user's own folders: still there after the failure
    (tmp_path / "mine").mkdir()
    for where in (["--set", f"output.dir={tmp_path / 'new' / 'runs'}"], ["--set", f"output.dir={tmp_path / 'kept'}"],
                  ["--out", tmp_path / "deep" / "run"], ["--out", tmp_path / "mine"]):
        assert_user_error(run_dlx("train", folders / "tiny.yaml", *MISSING_DATA, *where), "npz file not found")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "mine"]
    assert list((tmp_path / "kept").iterdir()) == []


def test_a_failed_ensemble_or_report_leaves_no_folder_it_made(folders, tmp_path):
    for name in ("r0", "r1"):  # a split that no longer matches its data: refused once the folder is claimed
        shutil.copytree(folders / name, tmp_path / name)
        split = json.loads((tmp_path / name / "split.json").read_text())
        (tmp_path / name / "split.json").write_text(json.dumps({**split, "fingerprint": "0" * 16}))
    assert_user_error(run_dlx("ensemble", tmp_path / "r0", tmp_path / "r1", "--out", tmp_path / "ens" / "new"),
                      "the dataset or its split changed")
    (tmp_path / "r1" / "metrics.jsonl").write_text("{damaged\n")
    assert_user_error(run_dlx("report", tmp_path / "r1"), "not valid JSON")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r0", "r1"]
    assert not (tmp_path / "r1" / "report").exists()


def test_a_failed_search_keeps_only_the_folder_that_records_its_trials(folders, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE.replace("base: tiny.yaml", f"base: {folders / 'tiny.yaml'}"))
    assert_user_error(run_dlx("search", space, "--storage", "nosuchdb://x/y", "--out",
                              tmp_path / "early" / "search"), "--storage")
    assert not (tmp_path / "early").exists()
    overrides = ["--set", "data.dataset=npz", "--set", "data.path=/nonexistent/d.npz"]
    assert_user_error(run_dlx("search", space, *overrides, "--trials", "2", "--max-failures", "2", "--out",
                              tmp_path / "failed"), "2 trials failed")
    assert {"study.db", "leaderboard.csv", "trials"} <= {p.name for p in (tmp_path / "failed").iterdir()}
    assert sorted(p.name for p in (tmp_path / "failed" / "trials").iterdir()) == ["0", "1"]  # where each failed
