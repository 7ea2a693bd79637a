"""`dlx ensemble` and ensemble evaluation as Python functions."""
from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ensemble import diversity
from ensemble.folder import EnsembleModel, load_ensemble, write_folder
from ensemble.members import Member, check_compatible, load_members
from ensemble.methods import DROP_BELOW, Combination, get_method, stacking
from ensemble.metrics import confusion, nll, scores
from ensemble.predictions import cached_log_probs
from ensemble.temperature import apply_temperature, fit_temperature
from spec.errors import DlxError


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


def _rank(result: dict) -> tuple[float, float]:
    return (-result["val"]["accuracy"], result["val"]["nll"])


def _leave_one_out(index: int, combination: Combination, method: str, val_lp: np.ndarray, y: np.ndarray,
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
        probs = Combination(weights / weights.sum()).predict(val_lp[keep])
    without = scores(probs, y)
    return {"val_nll_loss": without["nll"] - reference["nll"],
            "val_accuracy_loss": reference["accuracy"] - without["accuracy"]}


def build_ensemble(paths: list[str | Path], method: str = "weighted", out: Optional[str | Path] = None,
                   temperature: bool = False, duplicate_threshold: float = diversity.DUPLICATE_BELOW,
                   runs_root: str | Path = "runs", device="cpu") -> dict:
    """Pool the run folders `paths` with `method`, fitted on validation data; write the ensemble folder."""
    from train.rundir import ensure_writable, new_run_dir
    fit = get_method(method)
    members, skipped = load_members(paths)
    check_compatible(members, skipped)
    unit, y = shared_data(members[0])
    started = time.perf_counter()
    log_probs, hits = member_predictions(members, unit, device)
    predict_seconds = time.perf_counter() - started
    temperatures = [fit_temperature(lp, y["val"]) if temperature else 1.0 for lp in log_probs["val"]]
    lp = {s: np.stack([apply_temperature(a, t) for a, t in zip(log_probs[s], temperatures)]) for s in log_probs}
    started = time.perf_counter()
    combination = fit(lp["val"], y["val"])
    fit_seconds = time.perf_counter() - started
    val_probs = combination.val_probs if combination.val_probs is not None else combination.predict(lp["val"])
    ensemble = _both(val_probs, combination.predict(lp["test"]), y)
    singles = [_both(np.exp(lp["val"][i]), np.exp(lp["test"][i]), y) for i in range(len(members))]
    best = min(range(len(members)), key=lambda i: _rank(singles[i]))
    uniform = Combination(np.full(len(members), 1.0 / len(members)))
    names = [m.name for m in members]
    pair_list = diversity.pairs(names, lp["val"], y["val"], duplicate_threshold)
    per_member = diversity.member_diversity(names, pair_list)
    rows = []
    for i, member in enumerate(members):
        weight = float(combination.weights[i])
        loo = _leave_one_out(i, combination, method, lp["val"], y["val"], ensemble["val"]) if weight > 0 else None
        rows.append({"run": member.name, "weight": weight, "dropped": weight < DROP_BELOW,
                     "temperature": temperatures[i], "architecture": _architecture(member),
                     "val_accuracy": singles[i]["val"]["accuracy"], "val_nll": singles[i]["val"]["nll"],
                     "val_ece": singles[i]["val"]["ece"], "test_accuracy": singles[i]["test"]["accuracy"],
                     "test_nll": singles[i]["test"]["nll"], "test_ece": singles[i]["test"]["ece"],
                     "leave_one_out": loo, "cache_hit": hits[i], "checkpoint_sha256": member.sha256,
                     **per_member[member.name]})
    duplicates = [p for p in pair_list if p["near_duplicate"]]
    result = {
        "ensemble_dir": None, "method": method, "temperature_scaling": temperature,
        "members": rows,
        "results": {"best_member": {"run": names[best], **singles[best]},
                    "average": _both(uniform.predict(lp["val"]), uniform.predict(lp["test"]), y),
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
        write_folder(folder, members, combination, temperatures, method, report=result)
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
    return "-".join(n for n in names if n)[:60]


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
