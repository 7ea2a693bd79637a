"""Run folders: `runs/<name>-<YYYYmmdd-HHMMSS>/` with config.yaml, metrics, split, summary, checkpoints."""
from __future__ import annotations

import csv
import io
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from dlx.core.diskfull import full_disk_error
from dlx.core.errors import DlxError
from dlx.core.files import atomic_write_json, atomic_write_text, make_folder, note_made, strict_json
from dlx.core.reading import MAX_JSON_BYTES, load_json, parse_json, read_text
from dlx.experiment.yamlio import dump_yaml

METRIC_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds",
                  "images_per_second", "bn_seconds"]
TIMING_COLUMNS = ("seconds", "images_per_second", "bn_seconds")  # differ between identical runs


def new_run_dir(parent: str | Path, name: str) -> Path:
    """Create a fresh run folder for `name` inside `parent`, refusing names that escape it."""
    parent = Path(parent)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ensure_writable(parent)
    for attempt in range(100):
        candidate = parent / (f"{name}-{stamp}" + (f"-{attempt}" if attempt else ""))
        if candidate.resolve().parent != parent.resolve():
            raise DlxError(f"the run name {name!r} would place files outside {parent}.", key="name")
        try:
            candidate.mkdir()
            note_made(candidate)
            return candidate
        except FileExistsError:
            continue
    raise DlxError(f"could not create a new run folder in {parent}.")


def ensure_writable(folder: str | Path) -> Path:
    """Make `folder` (and parents) and prove we can write there, before any training starts."""
    folder = Path(folder)
    try:
        make_folder(folder)
        probe = folder / f".dlx-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DlxError(f"the output folder can't be written ({exc.strerror}); choose another with --out or "
                       "output.dir.", file=folder) from None
    return folder


# What dlx reads back from a run folder, each field with the types it may hold (None: may be null or absent).
NUMBER = (int, float)
SUMMARY_FIELDS = {"name": str, "dataset": str, "status": str, "device": str, "best_epoch": int, "epochs": int,
                  "trainable_params": int, "val_accuracy": NUMBER, "val_loss": NUMBER, "test_accuracy": NUMBER,
                  "test_loss": NUMBER, "wall_seconds": NUMBER, "images_per_second": NUMBER, "stopped_early": bool,
                  "warnings": list}
METRIC_FIELDS = {"epoch": int, **{key: NUMBER for key in METRIC_COLUMNS if key != "epoch"}}


def _field_problem(value, kind) -> str | None:
    """Why `value` is not of `kind` (a bool is no number; numbers must be finite and not negative), or None."""
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool:
        return f"should be {_KIND_NAMES[kind]}, but is {value!r}"
    if not isinstance(value, kind):
        return f"should be {_KIND_NAMES[kind]}, but is {type(value).__name__} {value!r}"[:200]
    if kind in (int, NUMBER) and not 0 <= value < float("inf"):
        return f"should be a finite number >= 0, but is {value!r}"
    return None


_KIND_NAMES = {str: "a string", int: "an integer", NUMBER: "a number", bool: "true or false", list: "a list"}


def check_record(record, fields: dict, file: Path, hint: str = "", line: int | None = None) -> dict:
    """`record` if it is a JSON object whose `fields` have their types; else a DlxError naming the file and field."""
    if not isinstance(record, dict):
        raise DlxError(f"expected a JSON object, but found {type(record).__name__} {json.dumps(record)[:60]}; the "
                       f"file is damaged.{hint}", file=file, line=line)
    for key, kind in fields.items():
        problem = _field_problem(record.get(key), kind)
        if problem:
            raise DlxError(f"{problem}; the file is damaged.{hint}", file=file, key=key, line=line)
    return record


def read_record(path: Path, fields: dict, hint: str = "") -> dict | None:
    """A run-folder JSON file checked against `fields`; None when it does not exist."""
    path = Path(path)
    try:
        data = load_json(path)
    except FileNotFoundError:
        return None
    except DlxError as exc:
        raise DlxError(exc.message + hint, file=path) from None
    return check_record(data, fields, path, hint=hint)


SUMMARY_HINT = " Restore it, or delete it: dlx train --resume writes a new one."
SPLIT_HINT = " Restore it from a copy of the run."


def _file(*parts: str) -> property:
    """A path inside the run folder, as a read-only attribute."""
    return property(lambda folder: folder.path.joinpath(*parts))


@dataclass(frozen=True)
class RunFolder:
    """A run folder's files by name, and their validated readers and atomic writers."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    config = _file("config.yaml")
    metrics_jsonl = _file("metrics.jsonl")
    metrics_csv = _file("metrics.csv")
    split = _file("split.json")
    summary = _file("summary.json")
    checkpoints = _file("checkpoints")
    best = _file("checkpoints", "best.pt")
    last = _file("checkpoints", "last.pt")

    def holds_epochs(self) -> bool:
        """Whether a run here recorded an epoch (even without last.pt)."""
        return self.last.exists() or self.metrics_jsonl.exists()

    def read_summary(self) -> dict:
        """summary.json with its fields of the expected types ({} when there is none)."""
        return read_record(self.summary, SUMMARY_FIELDS, SUMMARY_HINT) or {}

    def read_split(self) -> dict | None:
        """split.json (the saved validation/test indices) as a mapping, or None when there is none."""
        return read_record(self.split, {"dataset": str}, SPLIT_HINT)

    def read_metrics(self) -> list[dict]:
        """metrics.jsonl, one checked row per epoch ([] when there is none)."""
        return read_metric_rows(self.metrics_jsonl)

    def write_metrics(self, history: list[dict]) -> None:
        """Rewrite metrics.jsonl and metrics.csv from the full history (atomic, so never half-written)."""
        with disk_full_refused(self.metrics_jsonl):
            atomic_write_text(self.metrics_jsonl, "".join(strict_json(row) + "\n" for row in history))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
        with disk_full_refused(self.metrics_csv):
            atomic_write_text(self.metrics_csv, buffer.getvalue())

    def write_summary(self, summary: dict) -> None:
        with disk_full_refused(self.summary):
            atomic_write_json(self.summary, summary)

    def write_split(self, record: dict) -> None:
        with disk_full_refused(self.split):
            atomic_write_json(self.split, record)

    def write_config(self, spec_dict: dict) -> None:
        with disk_full_refused(self.config):
            atomic_write_text(self.config, dump_yaml(spec_dict))


@contextmanager
def disk_full_refused(path: Path) -> Iterator[None]:
    """A write of `path` that finds the disk full becomes a DlxError saying so; the file there before is intact
    (atomic_write replaces it only once the new one is whole)."""
    try:
        yield
    except OSError as exc:
        full = full_disk_error(exc, path, path.name, "the file is left as it was")
        if full is None:
            raise
        raise full from None


def read_summary(run_dir: Path) -> dict:
    return RunFolder(run_dir).read_summary()


def read_split(run_dir: Path) -> dict | None:
    return RunFolder(run_dir).read_split()


def read_metrics(run_dir: Path) -> list[dict]:
    return RunFolder(run_dir).read_metrics()


def write_metrics(run_dir: Path, history: list[dict]) -> None:
    RunFolder(run_dir).write_metrics(history)


def write_summary(run_dir: Path, summary: dict) -> None:
    RunFolder(run_dir).write_summary(summary)


def read_metric_rows(path: Path) -> list[dict]:
    """A metrics.jsonl file, one checked row per epoch ([] when there is none)."""
    try:
        lines = read_text(path, MAX_JSON_BYTES, "a JSON-lines file").splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = parse_json(line, path)
        except DlxError as exc:
            raise DlxError(f"line {number}: {exc.message}", file=path, line=number) from None
        check_record(row, METRIC_FIELDS, path, line=number)
        if not row.get("epoch"):
            raise DlxError("each row needs its epoch number (1, 2, ...); the file is damaged.", file=path,
                           key="epoch", line=number)
        rows.append(row)
    return rows
