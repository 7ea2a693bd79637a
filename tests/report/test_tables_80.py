"""`dlx runs` and `dlx report` in a pipe at 80 columns: every row's identifier is complete and unique, numbers are
never cut, and what doesn't fit is left out whole (and said so), never truncated with an ellipsis."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_dlx

WIDTH = 80
NAMES = [f"digits-resnet-small-width{w}-lr0.003-bs{b}" for w in (16, 32) for b in (64, 128)] + \
        ["digits-resnet-small-width16-lr0.003-bs64-again"]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table as lists of stripped cells (header and borders left out)."""
    lines = text.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("┡")) + 1:]
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in body if line.startswith("│")]


def fake_run(folder: Path, index: int) -> dict:
    """A finished run folder as `dlx train` leaves it, with numbers as long as they get."""
    summary = {"name": folder.name, "dataset": "digits", "status": "finished", "trainable_params": 1_234_567 + index,
               "val_accuracy": 0.98765432 - index / 1000, "test_accuracy": 0.97531234 - index / 1000,
               "epochs": 100 + index, "wall_seconds": 12_345.678 + index, "best_epoch": 90}
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(
        {"epoch": e, "train_loss": 1 / e, "train_accuracy": 1 - 1 / (e + 1), "val_loss": 1.1 / e,
         "val_accuracy": 1 - 1.1 / (e + 1), "lr": 0.003 / e, "seconds": 1.0}) + "\n" for e in range(1, 4)))
    return summary


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    return root, {name: fake_run(root / name, i) for i, name in enumerate(NAMES)}


def test_runs_table_at_80_columns_keeps_identifiers_and_numbers_whole(runs):
    root, summaries = runs
    result = run_dlx("runs", root, env={"COLUMNS": str(WIDTH)}, check=0)
    out = result.stdout
    assert "…" not in out and max(len(line) for line in out.splitlines() if line[:1] in "┏┃┡│└") <= WIDTH, out
    rows = table_rows(out)
    assert sorted(row[0] for row in rows) == sorted(NAMES), out  # one line per run, each name complete and unique
    for row in rows:
        s = summaries[row[0]]
        assert f"{s['val_accuracy']:.4f}" in row and f"{s['test_accuracy']:.4f}" in row and "finished" in row, row
        for cell in row[1:]:  # whatever else is shown is a whole value of this run
            assert cell in {f"{s['val_accuracy']:.4f}", f"{s['test_accuracy']:.4f}", "finished", "run", "digits",
                            str(s["epochs"]), f"{s['trainable_params']:,}", f"{s['wall_seconds']:.1f}", s["name"]}, cell
    assert "not shown at this width:" in " ".join(out.split())  # what was left out is named
    wide = table_rows(run_dlx("runs", root, env={"COLUMNS": "250"}, check=0).stdout)
    assert {f"{s['wall_seconds']:.1f}" for s in summaries.values()} <= {cell for row in wide for cell in row}


def test_runs_identifier_is_the_path_below_the_folder_given(runs):
    """Listing a run folder itself names it; listing the parent names each run relative to it."""
    root, _ = runs
    rows = table_rows(run_dlx("runs", root / NAMES[0], env={"COLUMNS": str(WIDTH)}, check=0).stdout)
    assert [row[0] for row in rows] == [NAMES[0]]


def test_report_file_list_at_80_columns_is_complete(runs):
    root, _ = runs
    run = root / NAMES[-1]
    result = run_dlx("report", run, env={"COLUMNS": str(WIDTH)}, check=0)
    out = result.stdout
    assert "…" not in out, out
    assert f"in {run / 'report'}" in out.splitlines()[0]  # the folder the file names are relative to, in full
    listed = [row[0] for row in table_rows(out) if row[0]]
    written = sorted(p.name for p in (run / "report").iterdir() if p.name != ".dlx-folder.json")  # the marker
    assert sorted(listed) == written and len(written) >= 4, out


def test_spec_key_columns_leave_room_for_the_accuracies_at_80_columns(runs):
    """`--columns` adds spec keys beside the metrics: long key paths break after their dots in the header instead
    of pushing validation and test accuracy out of an 80-column table."""
    root, summaries = runs
    for name in summaries:
        (root / name / "config.yaml").write_text("model:\n  vars: {width: 32}\ntrain:\n  optimizer: {lr: 0.003}\n")
    out = run_dlx("runs", root, "--columns", "model.vars.width,train.optimizer.lr", env={"COLUMNS": str(WIDTH)},
                  check=0).stdout
    assert max(len(line) for line in out.splitlines() if line[:1] in "┏┃┡│└") <= WIDTH, out
    footnote = " ".join(out.split()).partition("not shown at this width:")[2]
    for row in table_rows(out):
        s = summaries[row[0]]
        assert f"{s['val_accuracy']:.4f}" in row and f"{s['test_accuracy']:.4f}" in row, out
        for key, value in (("model.vars.width", "32"), ("train.optimizer.lr", "0.003")):
            assert value in row or key in footnote, out  # shown, or named as left out
    wider = run_dlx("runs", root, "--columns", "model.vars.width,train.optimizer.lr", env={"COLUMNS": "110"},
                    check=0).stdout  # 110 columns hold both keys beside the accuracies, though these names are long
    assert all("32" in row and "0.003" in row and row[0] in summaries for row in table_rows(wider)), wider
