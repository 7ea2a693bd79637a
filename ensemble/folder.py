"""The ensemble folder: `ensemble.yaml` (members, weights, method, temperatures, output temperature) that other
commands load as a model, plus `combiner.npz` for stacking. Each member's checkpoint hash is recorded and checked."""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from dlx.ensemble.members import CHECKPOINT, Member, check_compatible, load_member
from dlx.ensemble.methods import Combination
from dlx.ensemble.predictions import member_log_probs
from dlx.ensemble.temperature import apply_temperature
from dlx.core.errors import DlxError
from dlx.core.files import fsync_dir, strict_json, temporary_beside
from dlx.experiment.yamlio import dump_yaml, load_yaml_mapping
from dlx.train.outdir import MARKER, marker_text

FORMAT = "dlx-ensemble-1"


@dataclass
class EnsembleModel:
    """Members plus how to pool them; `predict` maps [0, 1]-scaled inputs to class probabilities."""

    members: list[Member]
    combination: Combination
    temperatures: list[float]
    method: str

    @property
    def class_names(self) -> list[str]:
        return list(self.members[0].record["class_names"])

    @property
    def input_shape(self) -> tuple:
        return tuple(self.members[0].record["input_shape"])

    def active(self) -> list[int]:
        """Members that take part (all of them for stacking, else those with non-zero weight)."""
        if self.combination.combiner is not None:
            return list(range(len(self.members)))
        return [i for i, w in enumerate(self.combination.weights) if w > 0]

    def pool(self, log_probs: dict[int, np.ndarray]) -> np.ndarray:
        """Class probabilities from {member index: raw log-probabilities} of the active members."""
        active = self.active()
        stacked = np.stack([apply_temperature(log_probs[i], self.temperatures[i]) for i in active])
        if self.combination.combiner is not None:
            return self.combination.predict(stacked)
        weights = self.combination.weights[active]
        return Combination(weights / weights.sum(), temperature=self.combination.temperature).predict(stacked)

    def predict(self, unit_x: np.ndarray, device="cpu") -> np.ndarray:
        return self.pool({i: member_log_probs(self.members[i], unit_x, device=device) for i in self.active()})


def _relative(path: Path, folder: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), folder.resolve())
    except ValueError:  # another drive on Windows
        return str(path.resolve())


def write_folder(folder: Path, members: list[Member], combination: Combination, temperatures: list[float],
                 method: str, report: Optional[dict] = None) -> None:
    """Write ensemble.yaml, combiner.npz (stacking) and ensemble.json (`report`) as one step: see _write_all."""
    entries = [{"run": _relative(m.run_dir, folder), "absolute": str(m.run_dir.resolve()), "weight": float(w),
                "temperature": float(t), "checkpoint_sha256": m.sha256}
               for m, w, t in zip(members, combination.weights, temperatures)]
    document = {"format": FORMAT, "method": method, "members": entries,
                "class_names": list(members[0].record["class_names"])}
    if combination.temperature != 1.0:
        document["output_temperature"] = float(combination.temperature)
    files = {}
    if combination.combiner is not None:
        buffer = io.BytesIO()
        np.savez(buffer, coef=np.asarray(combination.combiner["coef"]),
                 intercept=np.asarray(combination.combiner["intercept"]))
        files["combiner.npz"] = buffer.getvalue()
        document["combiner"] = "combiner.npz"
    files["ensemble.yaml"] = dump_yaml(document).encode("utf-8")
    if report is not None:
        files["ensemble.json"] = (strict_json(report, indent=2) + "\n").encode("utf-8")
    files[MARKER] = marker_text("ensemble").encode("utf-8")  # staged last, so a full disk fails on the artefacts
    _write_all(folder, files)


def _write_all(folder: Path, files: dict[str, bytes]) -> None:
    """Write every file to a temporary beside it and fsync it, and only then rename them all into place. A full
    disk (or any write error) thus fails before anything in `folder` is replaced: an ensemble already there keeps
    its ensemble.yaml, combiner.npz and ensemble.json together, never a new combiner under an old ensemble.yaml."""
    staged = []
    try:
        for name, data in files.items():
            fd, tmp = temporary_beside(folder / name)
            staged.append((tmp, folder / name))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp, path in sorted(staged, key=lambda item: item[1].name != MARKER):  # the marker goes in first
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(folder)


def _member_folder(entry: dict, folder: Path, file: Path) -> Path:
    for candidate in (folder / str(entry.get("run", "")), Path(str(entry.get("absolute", "")))):
        if str(candidate) and (candidate / CHECKPOINT).is_file():
            return candidate
    raise DlxError(f"member {entry.get('run')!r} was not found (looked relative to the ensemble folder and at "
                   f"{entry.get('absolute')!r}); move the runs back or rebuild the ensemble.", file=file)


def load_ensemble(folder: str | Path) -> EnsembleModel:
    folder = Path(folder)
    file = folder / "ensemble.yaml"
    document = load_yaml_mapping(file, "ensemble")
    if document.get("format") != FORMAT or not isinstance(document.get("members"), list) or not document["members"]:
        raise DlxError(f"not a dlx ensemble file (expected format '{FORMAT}' and a non-empty 'members' list).",
                       file=file)
    members, weights, temperatures = [], [], []
    for index, entry in enumerate(document["members"]):
        if not isinstance(entry, dict):
            raise DlxError("each member must be a mapping with 'run' and 'weight'.", file=file, key=f"members[{index}]")
        member = load_member(_member_folder(entry, folder, file))
        if entry.get("checkpoint_sha256") and member.sha256 != entry["checkpoint_sha256"]:
            raise DlxError(f"the checkpoint of member {member.name} changed since the ensemble was built (sha256 "
                           f"{member.sha256[:16]} ≠ {str(entry['checkpoint_sha256'])[:16]}); rebuild the ensemble.",
                           file=file, key=f"members[{index}]")
        members.append(member)
        weights.append(_number(entry.get("weight", 0.0), file, f"members[{index}].weight", positive=False))
        temperatures.append(_number(entry.get("temperature", 1.0), file, f"members[{index}].temperature"))
    check_compatible(members, [], minimum=1)
    combiner = _load_combiner(folder, document, file, len(members), len(members[0].record["class_names"]))
    weights = np.asarray(weights)
    if combiner is None and ((weights < 0).any() or weights.sum() <= 0):
        raise DlxError("member weights must be non-negative with a positive sum.", file=file, key="members")
    output_temperature = document.get("output_temperature", 1.0)
    if not isinstance(output_temperature, (int, float)) or isinstance(output_temperature, bool) \
            or not 0 < output_temperature < float("inf"):
        raise DlxError(f"output_temperature must be a positive number, but got {output_temperature!r}.", file=file,
                       key="output_temperature")
    return EnsembleModel(members, Combination(weights, combiner, temperature=float(output_temperature)), temperatures,
                         str(document.get("method", "")))


def _number(value, file: Path, key: str, positive: bool = True) -> float:
    """A member's weight (finite, >= 0) or temperature (finite, > 0): `.inf` or a temperature of 0 would turn
    every probability into NaN, printed as if it were a prediction."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        rule = "a finite number > 0" if positive else "a finite number >= 0"
        raise DlxError(f"must be {rule}, but got {value!r}; rebuild the ensemble or fix the value.", file=file,
                       key=key)
    return float(value)


def _load_combiner(folder: Path, document: dict, file: Path, members: int, classes: int) -> Optional[dict]:
    """The stacking combiner: coef (C, M*C) and intercept (C,), finite floats, as `stacking_predict` takes."""
    if not document.get("combiner"):
        return None
    path = folder / Path(str(document["combiner"])).name
    try:
        with np.load(path, allow_pickle=False) as archive:
            combiner = {"coef": archive["coef"], "intercept": archive["intercept"]}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DlxError(f"can't read the stacking combiner ({exc}).", file=path) from None
    shapes = {"coef": (classes, members * classes), "intercept": (classes,)}
    for name, array in combiner.items():
        if array.dtype.kind not in "fiu" or array.shape != shapes[name]:
            raise DlxError(f"'{name}' must be a numeric array of shape {shapes[name]} ({members} members, {classes} "
                           f"classes), but it is {array.dtype} of shape {array.shape}; rebuild the ensemble.",
                           file=path, key=name)
        if not np.isfinite(array).all():
            raise DlxError(f"'{name}' holds NaN or infinite values; rebuild the ensemble.", file=path, key=name)
    return {name: array.astype(np.float64) for name, array in combiner.items()}


def load_model(path: str | Path) -> EnsembleModel:
    """A run folder or an ensemble folder, as an EnsembleModel (a run is a one-member ensemble)."""
    path = Path(path)
    if (path / "ensemble.yaml").is_file():
        return load_ensemble(path)
    if (path / CHECKPOINT).is_file():
        return EnsembleModel([load_member(path)], Combination(np.ones(1)), [1.0], "single")
    raise DlxError("not a model: expected a run folder (with checkpoints/best.pt) or an ensemble folder (with "
                   "ensemble.yaml).", file=path)
