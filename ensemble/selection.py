"""The default method, `auto`: choose among average, weighted, weighted with per-member temperatures and greedy by
K-fold cross-validation on the validation predictions (each fitted on K-1 folds, scored on the held-out one), so
the choice itself is not fitted to the same samples that judge it; refit the winner on all validation data; and
fall back to the plain average or the best member where the refit is worse than either on validation. Each
candidate ends with one temperature on its pooled output, fitted on predictions its weights never saw: it
calibrates (NLL) without changing any prediction (accuracy). Test data is never seen here."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from dlx.ensemble.methods import Combination, get_method, metric_key
from dlx.ensemble.metrics import EPS, scores
from dlx.ensemble.temperature import apply_temperature, fit_temperature

FOLDS = 5
AUTO = ("average", "weighted", "weighted+temperature", "greedy")  # simplest first: a tie goes to the earlier
PLAIN_AVERAGE, BEST_MEMBER = "plain average", "best member"


@dataclass
class Fitted:
    """A pooling fitted on some validation samples: its name, per-member temperatures and Combination."""

    name: str
    temperatures: list[float]
    combination: Combination

    def scaled(self, log_probs: np.ndarray) -> np.ndarray:
        return np.stack([apply_temperature(lp, t) for lp, t in zip(log_probs, self.temperatures)])

    def predict(self, log_probs: np.ndarray) -> np.ndarray:
        return self.combination.predict(self.scaled(log_probs))


@dataclass
class Selection:
    """What was fitted, and the record of why: CV scores of every candidate, the winner, any fallback."""

    fitted: Fitted
    metric: str
    candidates: list[dict] = field(default_factory=list)
    winner: Optional[str] = None
    fallback: Optional[str] = None
    reason: str = ""

    def record(self) -> dict:
        return {"metric": self.metric, "folds": FOLDS if self.candidates else None, "candidates": self.candidates,
                "winner": self.winner, "fallback": self.fallback, "used": self.fitted.name,
                "output_temperature": self.fitted.combination.temperature, "reason": self.reason}


def calibrate(fitted: Fitted, log_probs: np.ndarray, y: np.ndarray) -> Fitted:
    """Fit the temperature of `fitted`'s pooled output on (log_probs, y): lower NLL, the same predicted classes."""
    fitted.combination.temperature = 1.0
    pooled = np.log(np.maximum(fitted.predict(log_probs), EPS))
    fitted.combination.temperature = fit_temperature(pooled, y)
    return fitted


def fit(name: str, log_probs: np.ndarray, y: np.ndarray, metric: str, temperature: bool = False,
        calibrated: bool = False) -> Fitted:
    """Fit method `name` (a "+temperature" suffix, or `temperature`, first fits one temperature per member;
    `calibrated` last fits the output temperature)."""
    method, _, suffix = name.partition("+")
    temperature = temperature or suffix == "temperature"
    temperatures = [fit_temperature(lp, y) if temperature else 1.0 for lp in log_probs]
    fitted = Fitted(f"{method}+temperature" if temperature else method, temperatures,
                    Combination(np.ones(len(log_probs))))
    fitted.combination = get_method(method)(fitted.scaled(log_probs), y, metric=metric)
    return calibrate(fitted, log_probs, y) if calibrated else fitted


def fold_of(y: np.ndarray, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Fold index per sample: each class's samples shuffled and dealt round-robin, so folds keep class shares."""
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(y), dtype=np.int64)
    for label in np.unique(y):
        where = rng.permutation(np.flatnonzero(y == label))
        assignment[where] = (np.arange(len(where)) + int(label)) % folds  # offset: small classes spread over folds
    return assignment


def cross_validate(name: str, log_probs: np.ndarray, y: np.ndarray, metric: str,
                   temperature: bool) -> tuple[dict, np.ndarray]:
    """Out-of-fold validation scores of method `name` (accuracy, NLL and ECE of predictions made by fits that never
    saw the sample predicted), and its uncalibrated out-of-fold pooled probabilities."""
    folds = min(FOLDS, len(y))
    assignment = fold_of(y, folds)
    raw, calibrated = np.zeros(log_probs.shape[1:]), np.zeros(log_probs.shape[1:])
    for k in range(folds):
        held = assignment == k
        if held.any():
            fitted = fit(name, log_probs[:, ~held], y[~held], metric, temperature)
            raw[held] = fitted.predict(log_probs[:, held])
            calibrated[held] = calibrate(fitted, log_probs[:, ~held], y[~held]).predict(log_probs[:, held])
    return {"method": name, **{f"cv_{key}": value for key, value in scores(calibrated, y).items()}}, raw


def _better(a: float, b: float, metric: str) -> bool:
    """Whether `a` is strictly better than `b` by `metric` (a difference under 1e-9 is a tie)."""
    return a > b + 1e-9 if metric == "accuracy" else a < b - 1e-9


def select(log_probs: np.ndarray, y: np.ndarray, metric: str = "accuracy", temperature: bool = False) -> Selection:
    """The `auto` method: cross-validate the candidates, refit the winner on all of `y`, guard against the refit
    being worse than the plain average or the best member on validation."""
    names = dict.fromkeys(n if "+" in n or not temperature else f"{n}+temperature" for n in AUTO)  # --temperature
    results = [cross_validate(name, log_probs, y, metric, temperature) for name in names]
    candidates = [scored for scored, _ in results]
    won = 0
    for index in range(1, len(candidates)):  # strictly better only: a tie keeps the simpler, earlier method
        if _better(candidates[index][f"cv_{metric}"], candidates[won][f"cv_{metric}"], metric):
            won = index
    winner = candidates[won]
    fitted = fit(winner["method"], log_probs, y, metric, temperature)
    # The output temperature comes from the out-of-fold predictions: refit on all of `y`, greedy or weighted pools
    # make fewer errors on `y` than on new data, and a temperature fitted there sharpens too much (0.05 instead of
    # 0.26 on digits, test NLL 0.21 instead of 0.07).
    fitted.combination.temperature = fit_temperature(np.log(np.maximum(results[won][1], EPS)), y)
    reason = _why(winner, candidates, metric)
    fallback, fitted, note = guard(fitted, log_probs, y, metric)
    if fitted.combination.temperature != 1.0:
        source = "" if fallback else ", fitted on the out-of-fold predictions"
        note += (f" Its pooled output is calibrated with temperature {fitted.combination.temperature:.2f}{source} "
                 "(lower NLL, the same predictions).")
    return Selection(fitted, metric, candidates, winner["method"], fallback, f"{reason}{note}")


def _why(winner: dict, candidates: list[dict], metric: str) -> str:
    label = "accuracy" if metric == "accuracy" else "NLL"
    value = winner[f"cv_{metric}"]
    others = ", ".join(f"{c['method']} {c[f'cv_{metric}']:.4f}" for c in candidates if c is not winner)
    tied = [c["method"] for c in candidates if c is not winner and not _better(value, c[f"cv_{metric}"], metric)
            and not _better(c[f"cv_{metric}"], value, metric)]
    text = (f"{winner['method']} had the best {FOLDS}-fold cross-validated validation {label}: {value:.4f} "
            f"(vs {others})")
    if tied:
        text += f"; tied with {', '.join(tied)}, the simpler method is kept"
    return text + "."


def guard(fitted: Fitted, log_probs: np.ndarray, y: np.ndarray, metric: str) -> tuple[Optional[str], Fitted, str]:
    """(fallback name or None, what to use, a sentence for the reason) — the refit ensemble must be no worse on
    validation `metric` than the plain average and the best single member; otherwise the better of those is used."""
    members = len(log_probs)
    refit = scores(fitted.predict(log_probs), y)
    average = calibrate(Fitted(PLAIN_AVERAGE, [1.0] * members, Combination(np.full(members, 1.0 / members))),
                        log_probs, y)
    best = min(range(members), key=lambda i: metric_key(np.exp(log_probs[i]), y, metric))
    single = calibrate(Fitted(BEST_MEMBER, [1.0] * members, Combination(np.eye(members)[best])), log_probs, y)
    options = [(name, option, scores(option.predict(log_probs), y)) for name, option in
               ((PLAIN_AVERAGE, average), (BEST_MEMBER, single))]
    worse = [(name, result) for name, _, result in options if _better(result[metric], refit[metric], metric)]
    if not worse:
        return None, fitted, ""
    name, option, result = min(options, key=lambda o: (-o[2]["accuracy"], o[2]["nll"]) if metric == "accuracy"
                               else (o[2]["nll"], -o[2]["accuracy"]))
    label = "accuracy" if metric == "accuracy" else "NLL"
    beaten = " and ".join(f"the {n}'s {r[metric]:.4f}" for n, r in worse)
    note = (f" Refit on all validation data its {label} {refit[metric]:.4f} was worse than {beaten}, so the {name} "
            f"is used instead.")
    return name, option, note
