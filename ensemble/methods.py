"""Ways to pool member predictions: a registry from method name to a function fitted on validation
log-probabilities (members, samples, classes), labels and the metric the ensemble is for ("accuracy" or
"nll"), returning a Combination."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from dlx.core.lazy import lazy_module
from dlx.core.registry import Registry
from dlx.ensemble.metrics import EPS, accuracy, nll
from dlx.ensemble.temperature import log_softmax

optimize = lazy_module("scipy.optimize")  # scipy and sklearn take a second to import: only when fitting
linear_model = lazy_module("sklearn.linear_model")
model_selection = lazy_module("sklearn.model_selection")

METHODS: Registry[Callable] = Registry("ensemble method", key="--method")
DROP_BELOW = 1e-3  # weights under this are set to zero and the member reported as dropped
METRICS = ("accuracy", "nll")  # what an ensemble can be fitted and chosen for
register_method = METHODS.register


def get_method(name: str) -> Callable:
    return METHODS.get(name)


@dataclass
class Combination:
    """Member weights (summing to one), or for stacking a linear combiner over member log-probabilities; then an
    optional temperature on the pooled output (it calibrates, and never changes which class is predicted)."""

    weights: np.ndarray
    combiner: Optional[dict] = None  # stacking: {"coef": (C, M*C), "intercept": (C,)}
    info: dict = field(default_factory=dict)
    val_probs: Optional[np.ndarray] = None  # honest validation predictions where fitting would bias them
    temperature: float = 1.0  # pooled probabilities p become p^(1/T), renormalised

    def predict(self, log_probs: np.ndarray) -> np.ndarray:
        """Class probabilities (samples, classes) from member log-probabilities (members, samples, classes)."""
        if self.combiner is None:
            probs = np.einsum("m,mnc->nc", self.weights, np.exp(log_probs))
        else:
            probs = stacking_predict(self.combiner, log_probs)
        if self.temperature == 1.0:
            return probs
        return np.exp(log_softmax(np.log(np.maximum(probs, EPS)) / self.temperature))


def metric_key(probs: np.ndarray, y: np.ndarray, metric: str = "accuracy") -> tuple[float, float]:
    """Smaller is better: the metric first, the other one breaking ties."""
    hit, loss = accuracy(probs, y), nll(probs, y)
    return (-hit, loss) if metric == "accuracy" else (loss, -hit)


def mixture_nll(weights: np.ndarray, log_probs: np.ndarray, y: np.ndarray) -> float:
    return nll(np.einsum("m,mnc->nc", weights, np.exp(log_probs)), y)


def _drop_small(weights: np.ndarray) -> np.ndarray:
    weights = np.where(weights < DROP_BELOW, 0.0, weights)
    return weights / weights.sum()


@register_method("average")
def average(log_probs: np.ndarray, y: np.ndarray, metric: str = "accuracy") -> Combination:
    members = len(log_probs)
    return Combination(np.full(members, 1.0 / members))


@register_method("weighted")
def weighted(log_probs: np.ndarray, y: np.ndarray, metric: str = "accuracy", max_iter: int = 200) -> Combination:
    """Non-negative weights summing to one (a softmax of free parameters) minimising validation NLL, the smooth
    stand-in for accuracy, found with BFGS. Judged by `metric`, never worse on validation than the plain average or
    the best single member: lowest NLL alone can mean lower accuracy (all weight on one calibrated member)."""
    members = len(log_probs)
    # the mixture's NLL only needs each member's probability of the true class: (members, samples)
    true_probs = np.exp(np.take_along_axis(log_probs, y[None, :, None], axis=2)[..., 0].astype(np.float64))

    def objective(params):
        weights = np.exp(params - params.max())
        weights /= weights.sum()
        mixture = np.maximum(weights @ true_probs, EPS)
        grad_w = -(true_probs / mixture).mean(1)
        return -np.log(mixture).mean(), weights * (grad_w - weights @ grad_w)  # chain rule through softmax

    # BFGS in numpy: L-BFGS-B's compiled kernel costs ~10 ms a step on a busy machine, for a handful of weights
    fit = optimize.minimize(objective, np.zeros(members), jac=True, method="BFGS",
                            options={"maxiter": max_iter, "gtol": 1e-8})
    fitted = np.exp(fit.x - fit.x.max())
    fitted = _drop_small(fitted / fitted.sum())
    candidates = [fitted, np.full(members, 1.0 / members)] + list(np.eye(members))
    probs = np.exp(log_probs)
    keys = [metric_key(np.einsum("m,mnc->nc", w, probs), y, metric) for w in candidates]
    best = min(range(len(candidates)), key=lambda i: keys[i])  # ties keep the earlier: optimised, then average
    return Combination(candidates[best], info={"iterations": int(fit.nit),
                                               "fallback": ["optimised", "average", "best member"][min(best, 2)]})


@register_method("greedy")
def greedy(log_probs: np.ndarray, y: np.ndarray, metric: str = "accuracy", rounds: int = 50,
           start: Optional[int] = None) -> Combination:
    """Caruana et al. (2004): forward selection with replacement, started from the best few members,
    judged on validation `metric` with the other breaking ties; returns the best ensemble met on the path."""
    probs = np.exp(log_probs)
    members = len(probs)
    start = start or max(1, min(3, members // 2))
    order = sorted(range(members), key=lambda m: metric_key(probs[m], y, metric))
    counts = np.zeros(members)
    counts[order[:start]] = 1
    total = probs[order[:start]].sum(0)
    best_key, best_counts = metric_key(total / start, y, metric), counts.copy()
    for step in range(rounds):
        candidates = (total[None] + probs) / (counts.sum() + 1)  # every member added once: (M, N, C)
        hits = (candidates.argmax(2) == y[None]).mean(1)
        losses = -np.log(np.maximum(candidates[:, np.arange(len(y)), y], EPS)).mean(1)
        keys = [(-float(h), float(l)) if metric == "accuracy" else (float(l), -float(h)) for h, l in zip(hits, losses)]
        pick = min(range(members), key=lambda m: keys[m])
        counts[pick] += 1
        total += probs[pick]
        if keys[pick] < best_key:
            best_key, best_counts = keys[pick], counts.copy()
    return Combination(best_counts / best_counts.sum(), info={"selections": best_counts.astype(int).tolist()})


STACK_FLOOR = np.log(1e-3)  # log-probabilities below this carry no more information and slow the fit


def _features(log_probs: np.ndarray) -> np.ndarray:
    return np.maximum(log_probs, STACK_FLOOR).transpose(1, 0, 2).reshape(log_probs.shape[1], -1)


def stacking_predict(combiner: dict, log_probs: np.ndarray) -> np.ndarray:
    scores = _features(log_probs) @ np.asarray(combiner["coef"]).T + np.asarray(combiner["intercept"])
    return np.exp(log_softmax(scores))


@register_method("stacking")
def stacking(log_probs: np.ndarray, y: np.ndarray, metric: str = "accuracy", folds: int = 5) -> Combination:
    """A multinomial logistic regression on the members' log-probabilities, fitted on validation data (by its
    log-loss whatever the metric); its reported validation scores come from cross-validated predictions."""
    members, _, classes = log_probs.shape
    x = _features(log_probs)
    model = linear_model.LogisticRegression(C=0.3, max_iter=1000)  # mild L2: validation sets are small
    folds = max(2, min(folds, int(np.bincount(y).min()) if len(y) else 2))
    out_of_fold = None
    if len(np.unique(y)) == classes and np.bincount(y, minlength=classes).min() >= 2:
        splitter = model_selection.StratifiedKFold(folds, shuffle=True, random_state=0)
        out_of_fold = model_selection.cross_val_predict(model, x, y, cv=splitter, method="predict_proba")
    model.fit(x, y)
    coef = np.zeros((classes, x.shape[1]))
    intercept = np.zeros(classes)
    coef[model.classes_], intercept[model.classes_] = model.coef_, model.intercept_
    if len(model.classes_) == 2 and classes == 2:  # sklearn's binary case keeps one row
        coef = np.stack([-model.coef_[0] / 2, model.coef_[0] / 2])
        intercept = np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
    missing = np.setdiff1d(np.arange(classes), model.classes_)
    intercept[missing] = -30.0  # classes never seen in validation get ~zero probability
    influence = np.abs(coef).reshape(classes, members, classes).sum(axis=(0, 2))
    weights = influence / influence.sum() if influence.sum() > 0 else np.full(members, 1.0 / members)
    return Combination(weights, {"coef": coef.tolist(), "intercept": intercept.tolist()},
                       info={"folds": folds}, val_probs=out_of_fold)
