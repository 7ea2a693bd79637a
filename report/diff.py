"""`dlx diff A B`: what differs between two runs, or a run and a spec: spec keys (as key paths), the data
fingerprint, the provenance (code, packages, host, device) and the metrics with their difference.

A run folder is read through train's validated readers; a spec file is resolved as `dlx train` would resolve it,
so both sides list every key with its default."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from dlx.core.errors import DlxError
from dlx.experiment.overrides import key_paths

# summary.json fields compared, in this order; the numbers get a difference (B - A)
METRICS = ("status", "best_epoch", "epochs", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
           "trainable_params", "wall_seconds", "images_per_second")
# provenance fields that differ between any two sessions and say nothing about how the result was made
VOLATILE = ("command", "cwd", "spec_file", "pid", "started", "ended", "status", "mlflow")
ABSENT = "(absent)"


@dataclass
class Side:
    """One side of a diff: a run folder or a spec file, reduced to what is compared."""

    path: str
    kind: str                                   # run | spec
    spec: dict
    fingerprint: Optional[str] = None           # split.json's data fingerprint (a spec has none until it trains)
    provenance: dict = field(default_factory=dict)  # the newest provenance.json session
    summary: dict = field(default_factory=dict)


def load_side(path: str | Path) -> Side:
    """A run folder (config.yaml, split.json, summary.json, provenance.json) or a spec file."""
    from dlx.archs.check import load_spec, validate_spec
    from dlx.experiment.load import spec_to_dict
    from dlx.experiment.yamlio import load_yaml_mapping
    from dlx.train.provenance import latest_session
    from dlx.train.rundir import RunFolder
    path = Path(path)
    if path.is_file():
        return Side(str(path), "spec", spec_to_dict(load_spec(path)))
    if not path.is_dir():
        raise DlxError("no such run folder or spec file.", file=path)
    folder = RunFolder(path)
    if not folder.config.is_file():
        raise DlxError("dlx diff compares run folders (a search's trials are run folders too) and spec files; "
                       "this folder has no config.yaml.", file=path)
    spec = spec_to_dict(validate_spec(load_yaml_mapping(folder.config, "spec"), file=folder.config))
    split = folder.read_split() or {}
    return Side(str(path), "run", spec, split.get("fingerprint"), latest_session(path), folder.read_summary())


def _pairs(a: dict, b: dict) -> list[dict]:
    """Rows {key, a, b} for the key paths whose values differ, in a's order then b's; a missing key is ABSENT."""
    keys = list(a) + [k for k in b if k not in a]
    unset = (None, ABSENT)  # null and missing both say "not set" (a section one side sets, the other leaves null)
    return [{"key": k, "a": a.get(k, ABSENT), "b": b.get(k, ABSENT)} for k in keys
            if a.get(k, ABSENT) != b.get(k, ABSENT) and not (a.get(k, ABSENT) in unset and b.get(k, ABSENT) in unset)]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metrics(a: Side, b: Side) -> list[dict]:
    rows = []
    for key in METRICS:
        left, right = a.summary.get(key), b.summary.get(key)
        if left is None and right is None:
            continue
        difference = right - left if _number(left) and _number(right) else None
        rows.append({"key": key, "a": left, "b": right, "difference": difference})
    return rows


def _provenance(a: Side, b: Side) -> list[dict]:
    if not a.provenance or not b.provenance:
        return []
    kept = [{k: v for k, v in side.provenance.items() if k not in VOLATILE} for side in (a, b)]
    return _pairs(key_paths(kept[0], lists=True), key_paths(kept[1], lists=True))


def diff(a: str | Path, b: str | Path) -> dict:
    """The differences between `a` and `b` (run folders or spec files), as `dlx diff --json` prints them."""
    left, right = load_side(a), load_side(b)
    spec = _pairs(key_paths(left.spec, lists=True), key_paths(right.spec, lists=True))
    known = left.fingerprint is not None and right.fingerprint is not None
    data = {"a": left.fingerprint, "b": right.fingerprint, "same": left.fingerprint == right.fingerprint
            if known else None}
    return {"a": {"path": left.path, "kind": left.kind}, "b": {"path": right.path, "kind": right.kind},
            "spec": spec, "data": data, "provenance": _provenance(left, right), "metrics": _metrics(left, right),
            "same_spec": not spec, "same_data": data["same"]}
