"""Run folders: `runs/<name>-<YYYYmmdd-HHMMSS>/` with config.yaml, metrics, split, summary, checkpoints."""
from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

from spec.errors import DlxError
from train.checkpoint import atomic_write_json, atomic_write_text, strict_json

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
            return candidate
        except FileExistsError:
            continue
    raise DlxError(f"could not create a new run folder in {parent}.")


def ensure_writable(folder: str | Path) -> Path:
    """Make `folder` (and parents) and prove we can write there, before any training starts."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".dlx-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DlxError(f"the output folder can't be written ({exc.strerror}); choose another with --out or "
                       "output.dir.", file=folder) from None
    return folder


def write_metrics(run_dir: Path, history: list[dict]) -> None:
    """Rewrite metrics.jsonl and metrics.csv from the full history (atomic, so never half-written)."""
    atomic_write_text(run_dir / "metrics.jsonl", "".join(strict_json(row) + "\n" for row in history))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(run_dir / "metrics.csv", buffer.getvalue())


def write_summary(run_dir: Path, summary: dict) -> None:
    atomic_write_json(run_dir / "summary.json", summary)


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default
