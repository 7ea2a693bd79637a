"""`dlx ensemble` and ensemble evaluation as Python functions."""
from __future__ import annotations

import contextlib
import errno
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from dlx.core.errors import DlxError, unknown_name
from dlx.ensemble.device import prediction_device
from dlx.ensemble.diversity import DUPLICATE_ADVICE, DUPLICATE_BELOW, member_diversity, pairs
from dlx.ensemble.folder import EnsembleModel, load_ensemble, write_folder
from dlx.ensemble.explain import member_reason
from dlx.ensemble.labels import differences, identifiers
from dlx.ensemble.members import Member, check_compatible, load_members
from dlx.ensemble.methods import DROP_BELOW, METRICS, Combination, get_method, metric_key, stacking
from dlx.ensemble.metrics import confusion, nll, scores
from dlx.ensemble.predictions import cached_log_probs
from dlx.ensemble.records import record_ensemble
from dlx.ensemble.selection import Fitted, Selection, fit, select
from dlx.train.data import check_split_compatible, load_splits
from dlx.train.data.access import ScaledInputs
from dlx.train.evaluate import SPLITS
from dlx.train.mlflow_log import Tracking
from dlx.train.outdir import claim
from dlx.train.provenance import new_session
from dlx.train.rundir import ensure_writable, new_run_dir


def shared_data(member: Member) -> tuple[dict, dict]:
    """({split: inputs scaled to [0, 1], read a batch at a time}, {split: labels}) of the validation and test data
    of `member`."""
    splits = load_splits(member.spec.data)
    reason = check_split_compatible(member.split, splits.split_record)
    if reason:
        raise DlxError(f"the dataset or its split changed since this run was trained ({reason}).", file=member.run_dir)
    unit = {s: ScaledInputs(splits.x[s], splits.scale) for s in ("val", "test")}
    return unit, {s: splits.y[s].astype(np.int64) for s in ("val", "test")}


def member_predictions(members: list[Member], unit: dict, device="cpu") -> tuple[dict, list[bool]]:
    """({split: log-probabilities (members, samples, classes)}, cache hit per member).

    In float64: a member's own scores and a pool that gives it all the weight must come out equal, not a float32
    rounding apart."""
    per_member, hits = [], []
    for member in members:
        result, hit = cached_log_probs(member, unit, device)
        per_member.append(result)
        hits.append(hit)
    return {s: np.stack([r[s] for r in per_member]).astype(np.float64) for s in ("val", "test")}, hits


def _both(val_probs, test_probs, y) -> dict:
    return {"val": scores(val_probs, y["val"]), "test": scores(test_probs, y["test"])}


def _leave_one_out(index: int, combination: Combination, val_lp: np.ndarray, y: np.ndarray,
                   reference: dict) -> Optional[dict]:
    """Validation NLL and accuracy lost when member `index` is left out (others keep their relative weights;
    stacking is refitted without it)."""
    keep = [i for i in range(len(val_lp)) if i != index]
    if combination.combiner is not None:
        refit = stacking(val_lp[keep], y, folds=3)  # fewer folds: this runs once per member
        probs = refit.val_probs if refit.val_probs is not None else refit.predict(val_lp[keep])
    else:
        weights = combination.weights[keep]
        if weights.sum() <= 0:
            return None
        probs = Combination(weights / weights.sum(), temperature=combination.temperature).predict(val_lp[keep])
    without = scores(probs, y)
    return {"val_nll_loss": without["nll"] - reference["nll"],
            "val_accuracy_loss": reference["accuracy"] - without["accuracy"]}


def check_options(method: str, metric: str) -> None:
    """The did-you-mean errors for an unknown method or metric, before any member is loaded."""
    if metric not in METRICS:
        raise unknown_name("metric", metric, METRICS, key="--metric")
    if method != "auto":
        get_method(method)


def choose(method: str, val_lp: np.ndarray, y: np.ndarray, metric: str, temperature: bool) -> Selection:
    """`auto`: cross-validated choice among the AUTO methods; any other name: that method, fitted on all of `y`."""
    if method == "auto":
        return select(val_lp, y, metric, temperature)
    fitted = fit(method, val_lp, y, metric, temperature)
    return Selection(fitted, metric, winner=method, reason=f"{method} was asked for with --method.")


DEFAULT_ROOT = "runs"  # where an ensemble without --out gets its new folder


@dataclass
class PoolFit:
    """The members' predictions and the pooling fitted on them: what the member rows and the report are made of."""

    members: list[Member]
    skipped: list[dict]
    y: dict                   # {split: labels}
    raw: dict                 # {split: member log-probabilities (members, samples, classes)}
    scaled: dict              # the same after each member's temperature
    hits: list[bool]          # prediction cache hit per member
    selection: Selection
    seconds: dict             # {"predict": ..., "fit": ...}

    @property
    def fitted(self) -> Fitted:
        return self.selection.fitted

    @property
    def combination(self) -> Combination:
        return self.selection.fitted.combination

    def scores(self, log_probs: dict, pooling: Combination) -> dict:
        """Validation and test scores of `pooling` over member log-probabilities `log_probs`."""
        val = pooling.val_probs if pooling is self.combination and pooling.val_probs is not None \
            else pooling.predict(log_probs["val"])
        return _both(val, pooling.predict(log_probs["test"]), self.y)


def build_ensemble(paths: list[str | Path], method: str = "auto", out: Optional[str | Path] = None,
                   temperature: bool = False, duplicate_threshold: float = DUPLICATE_BELOW,
                   metric: str = "accuracy", tracking: Optional[Tracking] = None, device: str = "auto") -> dict:
    """Pool the run folders `paths` with `method` ('auto' chooses by cross-validation), fitted on validation data
    for `metric`; write the ensemble folder with its provenance.json (and log it to MLflow with `tracking`).
    Test data is only scored, never used to fit or choose. The members predict on `device` (ensemble.device).

    `out` is checked and locked before any work (train.outdir): an ensemble there is rewritten, anything else is
    refused and left unchanged, and so is a second process writing the same folder."""
    check_options(method, metric)
    where = prediction_device(device)
    session = new_session()
    members, skipped = load_members(paths)
    check_compatible(members, skipped)  # a refused pool leaves no output folder behind
    with claim(out, "ensemble") if out is not None else contextlib.nullcontext():
        pool = fit_pool(members, skipped, method, metric, temperature, where)
        result = describe(pool, method, metric, duplicate_threshold)
        result["device"] = str(where)
        write_ensemble(pool, result, out)
        record_ensemble(result, session, members[0].split.get("fingerprint"), members[0].spec.name, tracking)
    return result


def fit_pool(members: list[Member], skipped: list[dict], method: str, metric: str, temperature: bool,
             device="cpu") -> PoolFit:
    """Predict with every member on `device` (cached), then fit and choose the pooling on validation data only."""
    unit, y = shared_data(members[0])
    started = time.perf_counter()
    raw, hits = member_predictions(members, unit, device)
    predicted = time.perf_counter()
    selection = choose(method, raw["val"], y["val"], metric, temperature)
    seconds = {"predict": predicted - started, "fit": time.perf_counter() - predicted}
    scaled = {s: selection.fitted.scaled(raw[s]) for s in raw}
    return PoolFit(members, skipped, y, raw, scaled, hits, selection, seconds)


def member_rows(pool: PoolFit, ensemble_val: dict, pair_list: list[dict], singles: list[dict]) -> list[dict]:
    """One row per member: its weight, scores alone, what leaving it out costs, its diversity and why."""
    members, combination, fitted = pool.members, pool.combination, pool.fitted
    title, short = identifiers([m.run_dir for m in members])
    differing = differences([m.spec.model_dump(mode="json") for m in members])
    per_member = member_diversity([m.name for m in members], pair_list)
    rows = []
    for i, member in enumerate(members):
        weight = float(combination.weights[i])
        loo = _leave_one_out(i, combination, pool.scaled["val"], pool.y["val"], ensemble_val) if weight > 0 else None
        alone = {f"{split}_{key}": singles[i][split][key] for split in ("val", "test")
                 for key in ("accuracy", "nll", "ece")}
        rows.append({"run": member.name, "id": short[i], "weight": weight, "dropped": weight < DROP_BELOW,
                     "temperature": fitted.temperatures[i], "architecture": _architecture(member),
                     "differs": differing[i], **alone, "leave_one_out": loo, "cache_hit": pool.hits[i],
                     "checkpoint_sha256": member.sha256, **per_member[member.name]})
    ids = dict(zip([m.name for m in members], short))
    for row in rows:
        row["reason"] = member_reason(row, rows, fitted.name, ids)
    return rows


def describe(pool: PoolFit, method: str, metric: str, duplicate_threshold: float) -> dict:
    """build_ensemble's result (ensemble.json): scores of the ensemble, the best member and the plain average,
    one row per member, the pairs and near-duplicates, and how the method was chosen."""
    members, y, raw = pool.members, pool.y, pool.raw
    names = [m.name for m in members]
    ensemble = pool.scores(pool.scaled, pool.combination)
    singles = [_both(np.exp(raw["val"][i]), np.exp(raw["test"][i]), y) for i in range(len(members))]
    best = min(range(len(members)), key=lambda i: metric_key(np.exp(raw["val"][i]), y["val"], metric))
    pair_list = pairs(names, raw["val"], y["val"], duplicate_threshold)
    rows = member_rows(pool, ensemble["val"], pair_list, singles)
    duplicates = [p for p in pair_list if p["near_duplicate"]]
    uniform = Combination(np.full(len(members), 1.0 / len(members)))
    return {
        "ensemble_dir": None, "method": pool.fitted.name, "requested_method": method, "metric": metric,
        "selection": pool.selection.record(), "temperature_scaling": any(t != 1.0 for t in pool.fitted.temperatures),
        "id_title": identifiers([m.run_dir for m in members])[0], "members": rows,
        "results": {"best_member": {"run": names[best], "id": rows[best]["id"], **singles[best]},
                    "average": pool.scores(raw, uniform), "ensemble": ensemble},
        "pairs": pair_list, "near_duplicates": duplicates,
        "advice": [DUPLICATE_ADVICE] if duplicates else [],
        "dropped": [r["run"] for r in rows if r["dropped"]], "skipped": pool.skipped,
        "cache": {"hits": sum(pool.hits), "misses": len(pool.hits) - sum(pool.hits)},
        "samples": {"val": int(len(y["val"])), "test": int(len(y["test"]))},
        "seconds": pool.seconds, "info": pool.combination.info,
    }


def write_ensemble(pool: PoolFit, result: dict, out: Optional[str | Path]) -> Path:
    """Write the ensemble folder (`out`, or a new one under runs/) and record it in `result`."""
    folder = ensure_writable(out) if out is not None else new_run_dir(DEFAULT_ROOT, "ensemble")
    result["ensemble_dir"] = str(folder)
    try:
        write_folder(folder, pool.members, pool.combination, pool.fitted.temperatures, pool.fitted.name,
                     report=result)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise DlxError(f"could not write the ensemble{': the disk is full' if full else ''} ({exc.strerror}). Any "
                       "ensemble already in this folder is unchanged"
                       f"{'; free some space and run the command again' if full else ''}.", file=folder) from None
    return folder


def _architecture(member: Member) -> str:
    model = member.spec.model
    if model.preset:
        return f"preset {model.preset}"
    names = [next(iter(layer)) if isinstance(layer, dict) else str(layer) for layer in model.layers or []]
    return "-".join(n for n in names if n)


def evaluate_ensemble(folder: str | Path, split: str = "test") -> dict:
    """Same shape as train.evaluate.evaluate_run: run, split, samples, loss, accuracy, confusion_matrix."""
    if split not in SPLITS:
        raise DlxError(f"unknown split '{split}'; expected one of: {', '.join(SPLITS)}.", key="--split")
    model: EnsembleModel = load_ensemble(folder)
    unit, y = shared_data(model.members[0])
    active = model.active()
    log_probs, _ = member_predictions([model.members[i] for i in active], unit)
    probs = model.pool({i: log_probs[split][k] for k, i in enumerate(active)})
    return {"run": str(folder), "split": split, "samples": int(len(y[split])), "loss": nll(probs, y[split]),
            "accuracy": float((probs.argmax(1) == y[split]).mean()), "confusion_matrix": confusion(probs, y[split])}
