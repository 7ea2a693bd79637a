"""Ensemble members: expand run and search folders, skip unusable ones with a reason, and check that
the rest share dataset, validation/test split and classes."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from dlx.core.errors import DlxError
from dlx.core.files import read_json
from dlx.archs.check import validate_spec
from dlx.train.checkpoint import load_checkpoint
from dlx.train.data import check_split_compatible
from dlx.train.inputs import pin_channels
from dlx.train.rundir import read_split

CHECKPOINT = Path("checkpoints") / "best.pt"
_DATA_KEYS = ("dataset", "path", "val_split", "test_split", "split_seed", "image_size", "grayscale", "channels")


@dataclass
class Member:
    """One usable run: where it is, its spec, its checkpoint hash and preprocessing record."""

    run_dir: Path
    spec: object  # experiment.schema.ExperimentSpec
    sha256: str  # of checkpoints/best.pt
    record: dict  # the checkpoint's `data` entry: mean, std, scale, class_names, input_shape
    split: dict = field(default_factory=dict)  # split.json

    @property
    def name(self) -> str:
        return str(self.run_dir)

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expand(paths: list[str | Path]) -> list[Path]:
    """Run folders named by `paths`: a search folder (one with `trials/`) stands for its trials."""
    folders: list[Path] = []
    for path in map(Path, paths):
        if (path / "trials").is_dir() and not (path / CHECKPOINT).exists():
            folders.extend(sorted(p for p in (path / "trials").iterdir() if p.is_dir()))
        else:
            folders.append(path)
    unique, seen = [], set()
    for folder in folders:
        key = folder.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(folder)
    return unique


def load_member(run_dir: Path) -> Member:
    """A Member, or DlxError saying why this folder can't be one. Checkpoints load with weights_only=True."""
    if not run_dir.is_dir():
        raise DlxError("not a folder.", file=run_dir)
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise DlxError(f"{why_no_checkpoint(read_json(run_dir / 'summary.json', None))}.", file=run_dir)
    checkpoint = load_checkpoint(path)
    record = checkpoint.get("data")
    if not isinstance(record, dict) or not {"mean", "std", "scale", "class_names", "input_shape"} <= set(record):
        raise DlxError("the checkpoint has no preprocessing record ('data'); it was not written by dlx train.",
                       file=path)
    spec = pin_channels(validate_spec(checkpoint.get("spec") or {}, file=path), record)
    split = read_split(run_dir)  # a damaged one is a DlxError naming the field
    if split is None:
        raise DlxError("split.json is missing or corrupt, so its validation split can't be checked.", file=run_dir)
    return Member(run_dir, spec, file_sha256(path), record, split)


def why_no_checkpoint(summary) -> str:
    """Why a folder has no checkpoints/best.pt, from its summary.json (None when it has none): a pruned or failed
    search trial, a trial whose checkpoints the search deleted, or not a dlx run folder at all."""
    if not isinstance(summary, dict):
        return "no checkpoints/best.pt and no summary.json: not a dlx run folder"
    status, epochs = summary.get("status"), summary.get("epochs")
    reason = str(summary.get("reason") or summary.get("error") or "").strip().rstrip(".")
    if status == "pruned":
        return reason if reason.startswith("pruned at epoch") else f"pruned at epoch {epochs or 0}"
    if status == "failed":
        return f"failed: {reason}" if reason else f"failed at epoch {epochs or 0} (no reason recorded)"
    if status == "running":
        return f"still running or killed (at epoch {epochs or 0}), with no checkpoint yet"
    if status in ("finished", "interrupted"):
        return (f"{status} at epoch {epochs}, but checkpoints/best.pt is gone (a search keeps the checkpoints of "
                "its best `keep` trials only)")
    return "no checkpoints/best.pt: not a finished dlx run folder"


def load_members(paths: list[str | Path]) -> tuple[list[Member], list[dict]]:
    """(usable members, skipped [{run, reason}])."""
    members, skipped = [], []
    for folder in expand(paths):
        try:
            members.append(load_member(folder))
        except DlxError as exc:
            skipped.append({"run": str(folder), "reason": exc.message})
    return members, skipped


def _data_differences(a: Member, b: Member) -> str:
    da, db = a.spec.data.model_dump(mode="json"), b.spec.data.model_dump(mode="json")
    diffs = [f"data.{k} {db.get(k)!r} vs {da.get(k)!r}" for k in _DATA_KEYS if da.get(k) != db.get(k)]
    return f" ({', '.join(diffs)})" if diffs else ""


def incompatibility(reference: Member, member: Member) -> str | None:
    """Why `member` can't be pooled with `reference` (None when it can)."""
    if member.record["class_names"] != reference.record["class_names"]:
        return (f"its classes {member.record['class_names'][:12]} differ from "
                f"{reference.record['class_names'][:12]}")
    if list(member.record["input_shape"]) != list(reference.record["input_shape"]):
        return f"its input shape {member.record['input_shape']} differs from {reference.record['input_shape']}"
    reason = check_split_compatible(reference.split, member.split)
    if reason:
        return f"its dataset or split differs: {reason} in split.json{_data_differences(reference, member)}"
    return None


def check_compatible(members: list[Member], skipped: list[dict], minimum: int = 2) -> None:
    """Raise DlxError unless there are `minimum` members that all share data, split and classes."""
    if len(members) < minimum:
        found = "no usable member" if not members else f"only one usable member ({members[0].name})"
        why = "; ".join(f"{s['run']}: {s['reason'].rstrip('.')}" for s in skipped)  # one full stop, at the end
        skipped_text = f" Skipped: {why}{'' if why.endswith(('?', '!')) else '.'}" if why else ""
        raise DlxError(f"an ensemble needs at least {minimum} run folders with a checkpoint, but found {found}."
                       f"{skipped_text} Pass more run folders (e.g. runs/*).")
    reference = members[0]
    for member in members[1:]:
        reason = incompatibility(reference, member)
        if reason:
            raise DlxError(f"member {member.name} can't be pooled with {reference.name}: {reason}. Members must "
                           "share the dataset, the validation/test split and the classes; leave it out or retrain "
                           "it with the same data settings.")
