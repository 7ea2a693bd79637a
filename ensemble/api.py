"""`dlx ensemble` and ensemble evaluation as Python functions."""
from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ensemble import diversity
from ensemble.folder import EnsembleModel, load_ensemble, write_folder
from ensemble.explain import member_reason
from ensemble.labels import differences, identifiers
from ensemble.members import Member, check_compatible, load_members
from ensemble.methods import DROP_BELOW, METRICS, Combination, get_method, metric_key, stacking
from ensemble.metrics import confusion, nll, scores
from ensemble.predictions import cached_log_probs
from ensemble.selection import Selection, fit, select
from core.errors import DlxError, unknown_name


def shared_data(member: Member) -> tuple[dict, dict]:
    """({split: inputs scaled to [0, 1]}, {split: labels}) of the validation and test data of `member`."""
    from train.data import check_split_compatible, load_splits
    splits = load_splits(member.spec.data)
    reason = check_split_compatible(member.split, splits.split_record)
    if reason:
        raise DlxError(f"the dataset or its split changed since this run was trained ({reason}).", file=member.run_dir)
    unit = {s: (splits.x[s].astype(np.float32) * np.float32(splits.scale)) for s in ("val", "test")}
    return unit, {s: splits.y[s].astype(np.int64) for s in ("val", "test")}


def member_predictions(members: list[Member], unit: dict, device="cpu") -> tuple[dict, list[bool]]:
    """({split: log-probabilities (members, samples, classes)}, cache hit per member)."""
    per_member, hits = [], []
    for member in members:
        result, hit = cached_log_probs(member, unit, device)
        per_member.append(result)
        hits.append(hit)
    return {s: np.stack([r[s] for r in per_member]) for s in ("val", "test")}, hits


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


def build_ensemble(paths: list[str | Path], method: str = "auto", out: Optional[str | Path] = None,
                   temperature: bool = False, duplicate_threshold: float = diversity.DUPLICATE_BELOW,
                   runs_root: str | Path = "runs", device="cpu", metric: str = "accuracy") -> dict:
    """Pool the run folders `paths` with `method` ('auto' chooses by cross-validation), fitted on validation data
    for `metric`; write the ensemble folder. Test data is only scored, never used to fit or choose.

    `out` is checked and locked before any work (train.outdir): an ensemble there is rewritten, anything else is
    refused and left unchanged, and so is a second process writing the same folder."""
    from train.outdir import claim
    check_options(method, metric)
    members, skipped = load_members(paths)
    check_compatible(members, skipped)  # a refused pool leaves no output folder behind
    args = ((members, skipped), method, out, temperature, duplicate_threshold, runs_root, device, metric)
    if out is None:
        return _build_ensemble(*args)  # into a new folder, made at the end
    with claim(out, "ensemble"):
        return _build_ensemble(*args)


def _build_ensemble(pool, method, out, temperature, duplicate_threshold, runs_root, device, metric) -> dict:
    """The body of `build_ensemble`; `pool` is (members, skipped), already checked."""
    from train.rundir import ensure_writable, new_run_dir
    members, skipped = pool
    unit, y = shared_data(members[0])
    started = time.perf_counter()
    raw, hits = member_predictions(members, unit, device)
    predict_seconds = time.perf_counter() - started
    started = time.perf_counter()
    selection = choose(method, raw["val"], y["val"], metric, temperature)
    fit_seconds = time.perf_counter() - started
    fitted, combination = selection.fitted, selection.fitted.combination
    lp = {s: fitted.scaled(raw[s]) for s in raw}
    val_probs = combination.val_probs if combination.val_probs is not None else combination.predict(lp["val"])
    ensemble = _both(val_probs, combination.predict(lp["test"]), y)
    singles = [_both(np.exp(raw["val"][i]), np.exp(raw["test"][i]), y) for i in range(len(members))]
    best = min(range(len(members)), key=lambda i: metric_key(np.exp(raw["val"][i]), y["val"], metric))
    uniform = Combination(np.full(len(members), 1.0 / len(members)))
    names = [m.name for m in members]
    title, short = identifiers([m.run_dir for m in members])
    ids = dict(zip(names, short))
    differing = differences([m.spec.model_dump(mode="json") for m in members])
    pair_list = diversity.pairs(names, raw["val"], y["val"], duplicate_threshold)
    per_member = diversity.member_diversity(names, pair_list)
    rows = []
    for i, member in enumerate(members):
        weight = float(combination.weights[i])
        loo = _leave_one_out(i, combination, lp["val"], y["val"], ensemble["val"]) if weight > 0 else None
        rows.append({"run": member.name, "id": short[i], "weight": weight, "dropped": weight < DROP_BELOW,
                     "temperature": fitted.temperatures[i], "architecture": _architecture(member),
                     "differs": differing[i],
                     "val_accuracy": singles[i]["val"]["accuracy"], "val_nll": singles[i]["val"]["nll"],
                     "val_ece": singles[i]["val"]["ece"], "test_accuracy": singles[i]["test"]["accuracy"],
                     "test_nll": singles[i]["test"]["nll"], "test_ece": singles[i]["test"]["ece"],
                     "leave_one_out": loo, "cache_hit": hits[i], "checkpoint_sha256": member.sha256,
                     **per_member[member.name]})
    for row in rows:
        row["reason"] = member_reason(row, rows, fitted.name, ids)
    duplicates = [p for p in pair_list if p["near_duplicate"]]
    result = {
        "ensemble_dir": None, "method": fitted.name, "requested_method": method, "metric": metric,
        "selection": selection.record(), "temperature_scaling": any(t != 1.0 for t in fitted.temperatures),
        "id_title": title, "members": rows,
        "results": {"best_member": {"run": names[best], "id": short[best], **singles[best]},
                    "average": _both(uniform.predict(raw["val"]), uniform.predict(raw["test"]), y),
                    "ensemble": ensemble},
        "pairs": pair_list, "near_duplicates": duplicates,
        "advice": [diversity.DUPLICATE_ADVICE] if duplicates else [],
        "dropped": [r["run"] for r in rows if r["dropped"]], "skipped": skipped,
        "cache": {"hits": sum(hits), "misses": len(hits) - sum(hits)},
        "samples": {"val": int(len(y["val"])), "test": int(len(y["test"]))},
        "seconds": {"predict": predict_seconds, "fit": fit_seconds}, "info": combination.info,
    }
    folder = ensure_writable(out) if out is not None else new_run_dir(runs_root, "ensemble")
    result["ensemble_dir"] = str(folder)
    try:
        write_folder(folder, members, combination, fitted.temperatures, fitted.name, report=result)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise DlxError(f"could not write the ensemble{': the disk is full' if full else ''} ({exc.strerror}). Any "
                       "ensemble already in this folder is unchanged"
                       f"{'; free some space and run the command again' if full else ''}.", file=folder) from None
    return result


def _architecture(member: Member) -> str:
    model = member.spec.model
    if model.preset:
        return f"preset {model.preset}"
    names = [next(iter(layer)) if isinstance(layer, dict) else str(layer) for layer in model.layers or []]
    return "-".join(n for n in names if n)


def evaluate_ensemble(folder: str | Path, split: str = "test") -> dict:
    """Same shape as train.evaluate.evaluate_run: run, split, samples, loss, accuracy, confusion_matrix."""
    from train.evaluate import SPLITS
    if split not in SPLITS:
        raise DlxError(f"unknown split '{split}'; expected one of: {', '.join(SPLITS)}.", key="--split")
    model: EnsembleModel = load_ensemble(folder)
    unit, y = shared_data(model.members[0])
    active = model.active()
    log_probs, _ = member_predictions([model.members[i] for i in active], unit)
    probs = model.pool({i: log_probs[split][k] for k, i in enumerate(active)})
    return {"run": str(folder), "split": split, "samples": int(len(y[split])), "loss": nll(probs, y[split]),
            "accuracy": float((probs.argmax(1) == y[split]).mean()), "confusion_matrix": confusion(probs, y[split])}
