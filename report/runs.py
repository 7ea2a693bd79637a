"""`dlx runs`: one row per run folder (and per search folder), read from the folders alone.

A folder that can't be read is listed as damaged; the listing itself never fails on one.
"""
from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import Optional

from dlx.core.errors import DlxError, unknown_name
from dlx.core.reading import load_json
from dlx.core.processes import pid_alive

COLUMNS = ["name", "kind", "dataset", "trainable_params", "val_accuracy", "test_accuracy", "epochs", "wall_seconds",
           "status", "trials", "path"]


def _read_json(path: Path):
    """A folder's JSON record, read bounded (core.reading): a damaged, hostile or missing one raises a DlxError or
    OSError, which the row turns into 'damaged'."""
    return load_json(path)


def _writer_alive(summary: dict) -> bool:
    """Whether the process that wrote a 'running' summary still runs (only knowable on the same host)."""
    pid, host = summary.get("pid"), summary.get("host")
    if not pid or host != socket.gethostname():
        return True  # can't tell from here: trust the summary
    try:
        return pid_alive(int(pid))
    except ValueError:
        return True


SUMMARY_TYPES = {"name": str, "status": str, "dataset": str, "trainable_params": int, "epochs": int,
                 "val_accuracy": float, "test_accuracy": float, "wall_seconds": float}


def _summary_problem(summary: dict) -> Optional[str]:
    """Why a summary.json's listed fields can't be shown or sorted (a wrong type, a non-finite number), or None."""
    for key, kind in SUMMARY_TYPES.items():
        value = summary.get(key)
        if value is None:
            continue
        if kind is str:
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                and (kind is float or float(value).is_integer())
        if not ok:
            wanted = {str: "a string", int: "an integer", float: "a finite number"}[kind]
            return f"'{key}' should be {wanted}, but is {value!r}"[:200]
    return None


def run_row(folder: Path) -> dict:
    row = {"name": folder.name, "kind": "run", "path": str(folder)}
    try:
        summary = _read_json(folder / "summary.json")
        if not isinstance(summary, dict):
            raise ValueError("summary.json is not a mapping")
    except (OSError, ValueError, DlxError) as exc:
        return {**row, "status": "damaged", "problem": f"summary.json unreadable: {exc}"}
    problem = _summary_problem(summary)
    if problem:  # listed as damaged; the other folders are still listed
        return {**row, "status": "damaged", "problem": f"summary.json: {problem}"}
    status = summary.get("status", "unknown")
    if status == "running" and not _writer_alive(summary):
        status = "interrupted"
    for key in ("dataset", "trainable_params", "val_accuracy", "test_accuracy", "epochs", "wall_seconds"):
        row[key] = summary.get(key)
    row["name"] = summary.get("name") or folder.name
    return {**row, "status": status}


def search_row(folder: Path) -> dict:
    row = {"name": folder.name, "kind": "search", "path": str(folder)}
    trials = [t for t in (folder / "trials").iterdir() if t.is_dir()] if (folder / "trials").is_dir() else []
    row["trials"] = len(trials)
    best = None
    try:
        if (folder / "best.json").exists():
            best = _read_json(folder / "best.json")
    except (OSError, ValueError, DlxError) as exc:
        return {**row, "status": "damaged", "problem": f"best.json unreadable: {exc}"}
    if isinstance(best, dict):
        row["status"] = "finished"
        validation, test = best.get("validation") or best.get("val") or {}, best.get("test") or {}
        row["val_accuracy"] = validation.get("val_accuracy", best.get("val_accuracy"))
        row["test_accuracy"] = test.get("accuracy", test.get("test_accuracy", best.get("test_accuracy")))
        row["best_trial"] = best.get("trial")
        row["epochs"] = best.get("epochs")
    else:
        row["status"] = "running" if trials else "empty"
    trial_rows = [run_row(t) for t in trials if (t / "summary.json").exists()]
    if trial_rows:
        row["dataset"] = trial_rows[0].get("dataset")
        scores = [r["val_accuracy"] for r in trial_rows if isinstance(r.get("val_accuracy"), (int, float))]
        if scores and row.get("val_accuracy") is None:
            row["val_accuracy"] = max(scores)
    return row


def classify(folder: Path) -> Optional[str]:
    if (folder / "trials").is_dir() or (folder / "study.db").exists() or (folder / "search.yaml").exists():
        return "search"
    if (folder / "ensemble.yaml").exists():
        return "ensemble"
    if (folder / "summary.json").exists() or (folder / "config.yaml").exists() or (folder / "checkpoints").is_dir():
        return "run"
    return None


def list_runs(root: str | Path = "runs", sort: str = "name", filters: Optional[list[str]] = None,
              columns: Optional[list[str]] = None) -> list[dict]:
    """Rows for every run/search/ensemble folder directly inside `root`; `columns` adds spec values by key path
    (`model.vars.width`: a run's config.yaml, a search's best.yaml), which sort and filter like the others."""
    root = Path(root)
    if not root.exists():
        raise DlxError("no such folder.", file=root)
    if classify(root) in ("run", "search"):
        folders = [root]
    else:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    rows = []
    for folder in folders:
        kind = classify(folder)
        if kind == "run":
            rows.append(run_row(folder))
        elif kind == "search":
            rows.append(search_row(folder))
        elif kind == "ensemble":
            rows.append(ensemble_row(folder))
    add_spec_columns(rows, columns or [])
    known = COLUMNS + list(columns or [])
    for text in filters or []:
        key, _, value = text.partition("=")
        if not _:
            raise DlxError(f"--filter expects key=value, got {text!r}.", key="--filter")
        if key not in known:
            raise unknown_name("column", key, known, key="--filter")
        rows = [r for r in rows if str(r.get(key)) == value]
    if sort not in known:
        raise unknown_name("column", sort, known, key="--sort")
    numeric = sort in ("trainable_params", "val_accuracy", "test_accuracy", "epochs", "wall_seconds", "trials") \
        or (sort in (columns or []) and all(_is_number(r[sort]) for r in rows if r.get(sort) is not None))
    present = [r for r in rows if r.get(sort) is not None]
    missing = [r for r in rows if r.get(sort) is None]
    present.sort(key=lambda r: r[sort] if numeric else str(r[sort]), reverse=numeric)
    return present + missing


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def spec_values(folder: Path, kind: str) -> Optional[dict]:
    """{key.path: value} of a run's config.yaml or a search's best.yaml; None when there is none or it is damaged
    (the listing never fails on one folder)."""
    from dlx.experiment.overrides import key_paths
    from dlx.experiment.yamlio import load_yaml_mapping
    path = folder / {"run": "config.yaml", "search": "best.yaml"}.get(kind, "")
    if kind not in ("run", "search") or not path.is_file():
        return None
    try:
        return key_paths(load_yaml_mapping(path, "spec"), lists=True)
    except DlxError:
        return None


def add_spec_columns(rows: list[dict], columns: list[str]) -> None:
    """Set each row's value of every spec key path in `columns`; a key no folder's spec has is refused."""
    if not columns:
        return
    seen: set = set()
    for row in rows:
        values = spec_values(Path(row["path"]), row["kind"])
        if values is None:
            continue
        seen.update(values)
        for key in columns:
            row[key] = values.get(key)
    for key in columns:
        if seen and key not in seen:
            listed = [k for k in seen if not k.startswith("model.layers.")] + ["model.layers.0..."]
            raise unknown_name("spec key", key, listed, key="--columns")
        if key in COLUMNS:
            raise DlxError(f"--columns takes spec key paths such as model.vars.width; {key!r} is a column already.",
                           key="--columns")


def ensemble_row(folder: Path) -> dict:
    row = {"name": folder.name, "kind": "ensemble", "path": str(folder)}
    try:
        data = _read_json(folder / "ensemble.json")
        result = data["results"]["ensemble"]
        return {**row, "status": "finished", "val_accuracy": result["val"]["accuracy"],
                "test_accuracy": result["test"]["accuracy"], "trials": len(data.get("members", []))}
    except (OSError, ValueError, KeyError, TypeError, DlxError) as exc:
        return {**row, "status": "damaged", "problem": f"ensemble.json unreadable: {exc}"}
