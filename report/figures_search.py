"""A search folder's report: optimisation history, parameter importances, parallel coordinates, slice plots
and the learning curves of complete vs pruned trials, read from the Optuna study (or, if its storage can't be
opened, from leaderboard.json)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from dlx.core.numbers import fmt
from dlx.report.figures import Report, Table, pyplot, save
from dlx.core.files import read_json
from dlx.core.lazy import lazy_module
from dlx.search import default_storage, requeued

optuna = lazy_module("optuna")

MIN_IMPORTANCE_TRIALS = 3  # complete trials below which parameter importances mean nothing
LEADERBOARD_ROWS = 25
STATE_COLOURS = {"COMPLETE": "tab:blue", "PRUNED": "tab:red", "FAIL": "tab:gray"}


@dataclass
class Trial:
    number: int
    state: str                    # COMPLETE | PRUNED | FAIL
    value: Optional[float]        # final value (COMPLETE) or last reported one (PRUNED)
    params: dict
    intermediate: dict = field(default_factory=dict)  # epoch → value reported to the pruner


@dataclass
class SearchData:
    metric: str
    direction: str                # maximize | minimize
    trials: list[Trial]
    log_params: set = field(default_factory=set)  # parameters sampled on a log scale
    categorical: set = field(default_factory=set)  # parameters chosen from a list (even a list of numbers)
    study: object = None          # the optuna Study, when its storage could be opened

    @property
    def params(self) -> list[str]:
        names = []
        for trial in self.trials:
            names += [n for n in trial.params if n not in names]
        return names

    def complete(self) -> list[Trial]:
        return [t for t in self.trials if t.state == "COMPLETE" and _finite(t.value)]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def load_search(folder: Path, notes: list[str]) -> SearchData:
    best = read_json(folder / "best.json", {}) or {}
    leaderboard = read_json(folder / "leaderboard.json", []) or []
    metric = best.get("metric") or next((r.get("metric") for r in leaderboard if r.get("metric")), "value")
    direction = best.get("direction") or ("minimize" if "loss" in str(metric) else "maximize")
    study = _open_study(folder, notes)
    if study is not None:
        state, kinds = optuna.trial.TrialState, optuna.distributions
        trials, log_params, categorical = [], set(), set()
        every = study.get_trials(deepcopy=False)
        retried = requeued(every)  # interrupted or killed, and run again: the retry is the trial that counts
        for t in every:
            if t.state in (state.RUNNING, state.WAITING) or t.number in retried:
                continue
            steps = t.intermediate_values or {int(e): v for e, v in t.user_attrs.get("curve") or []}  # several
            value = (t.values[0] if t.values else None) if t.state == state.COMPLETE else \
                (steps[max(steps)] if steps else None)  # several objectives: the first one
            trials.append(Trial(t.number, t.state.name, value, dict(t.params), dict(steps)))
            log_params |= {n for n, d in t.distributions.items()
                           if isinstance(d, (kinds.FloatDistribution, kinds.IntDistribution)) and d.log}
            categorical |= {n for n, d in t.distributions.items() if isinstance(d, kinds.CategoricalDistribution)}
        return SearchData(metric, study.directions[0].name.lower(), trials, log_params, categorical, study)
    trials = [Trial(r["number"], r["state"], r.get("value"), r.get("params") or {}) for r in leaderboard
              if isinstance(r, dict) and "number" in r and "state" in r]
    return SearchData(metric, direction, sorted(trials, key=lambda t: t.number))


def _open_study(folder: Path, notes: list[str]):
    """The study behind the folder, read-only; None (with a note) if its storage can't be reached."""
    info = read_json(folder / "study.json", {}) or {}
    url = info.get("storage") or default_storage(folder)
    if not info.get("storage") and not (folder / "study.db").is_file():
        notes.append("No study.db in this folder, so the figures come from leaderboard.json alone.")
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        names = optuna.get_all_study_names(storage=url)
        name = info.get("name") if info.get("name") in names else (names[0] if len(names) == 1 else None)
        if name is None:
            raise ValueError(f"study {info.get('name')!r} not found among {names}")
        return optuna.load_study(study_name=name, storage=url)
    except Exception as exc:  # any storage problem: fall back to leaderboard.json, said in the report
        notes.append(f"The study storage could not be opened ({str(exc).splitlines()[0][:160]}), so the figures "
                     "come from leaderboard.json alone.")
        return None


def search_report(folder: Path, out: Path) -> Report:
    report = Report("search", f"Search {folder.name}", folder)
    data = load_search(folder, report.notes)
    best = read_json(folder / "best.json", {}) or {}
    counts = {s.lower(): sum(t.state == s for t in data.trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    report.numbers = {"metric": data.metric, "direction": data.direction, "best_value": best.get("value"),
                      "best_trial": best.get("trial"), "test_accuracy": (best.get("test") or {}).get("accuracy"),
                      "trials_complete": counts["complete"], "trials_pruned": counts["pruned"],
                      "trials_failed": counts["fail"], "best_params": best.get("params")}
    if best:
        rows = [["trial", best.get("trial")], [data.metric, fmt(best.get("value"))],
                ["test accuracy", fmt((best.get("test") or {}).get("accuracy"))]]
        rows += [[name, fmt(value)] for name, value in (best.get("params") or {}).items()]
        report.tables.append(Table("Best trial", ["key", "value"], rows))
    else:
        report.notes.append("No trial has completed yet, so there is no best trial.")
    if not data.trials:
        report.notes.append("This search has no finished trials yet, so there is nothing to plot.")
        return report
    history(data, report, out)
    importances(data, report, out)
    if data.params and data.complete():
        parallel_coordinates(data, report, out)
        slices(data, report, out)
    trial_states(data, report, out)
    if (folder / "pareto.json").is_file():
        from dlx.report.figures_pareto import pareto_front
        pareto_front(folder, report, out)
    names = data.params
    ranked = sorted(data.trials, key=lambda t: (t.state != "COMPLETE", _rank(t, data), t.number))
    report.tables.append(Table("Leaderboard", ["trial", "state", data.metric, *names],
                               [[t.number, t.state, fmt(t.value), *[fmt(t.params.get(n)) for n in names]]
                                for t in ranked[:LEADERBOARD_ROWS]]))
    return report


def _rank(trial: Trial, data: SearchData) -> float:
    if not _finite(trial.value):
        return math.inf
    return -trial.value if data.direction == "maximize" else trial.value


def history(data: SearchData, report: Report, out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
        points = [(t.number, t.value) for t in data.trials if t.state == state and _finite(t.value)]
        if points:
            ax.scatter(*zip(*points), marker=marker, color=STATE_COLOURS[state], zorder=3,
                       label=f"{state.lower()} ({len(points)})" + (" at last report" if state == "PRUNED" else ""))
    complete = sorted(data.complete(), key=lambda t: t.number)
    if complete:
        pick = max if data.direction == "maximize" else min
        best_so_far = [pick(t.value for t in complete[: i + 1]) for i in range(len(complete))]
        ax.step([t.number for t in complete], best_so_far, where="post", color="tab:green", label="best so far")
    ax.set_xlabel("trial number")
    ax.set_ylabel(data.metric)
    ax.set_title(f"Optimisation history ({data.direction} {data.metric})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    fig.tight_layout()
    save(fig, report, out, "history", "Optimisation history")


def importances(data: SearchData, report: Report, out: Path) -> None:
    complete = data.complete()
    if data.study is None:
        report.notes.append("Parameter importances need the Optuna study, which could not be opened.")
        return
    if len(complete) < MIN_IMPORTANCE_TRIALS or len(data.params) < 1:
        report.notes.append(f"Parameter importances need at least {MIN_IMPORTANCE_TRIALS} complete trials; this "
                            f"search has {len(complete)}, so they are not shown.")
        return
    try:
        multi = len(data.study.directions) > 1  # several objectives: importances for the first
        values = optuna.importance.get_param_importances(data.study, target=(lambda t: t.values[0]) if multi else None)
    except (ValueError, RuntimeError) as exc:
        report.notes.append(f"Parameter importances could not be computed ({str(exc).splitlines()[0][:160]}).")
        return
    if not values:
        report.notes.append("Parameter importances are empty (every parameter took a single value).")
        return
    report.numbers["param_importances"] = dict(values)
    plt = pyplot()
    names = list(values)[::-1]
    fig, ax = plt.subplots(figsize=(8, max(3.2, 0.55 * len(names) + 1.5)))
    ax.barh(names, [values[n] for n in names], color="tab:blue")
    for y, name in enumerate(names):
        ax.text(values[name], y, f" {values[name]:.2f}", va="center", fontsize=9)
    ax.set_xlim(0, max(values.values()) * 1.15 or 1)
    ax.set_xlabel("importance (fANOVA, share of the variance of the metric)")
    ax.set_title(f"Parameter importances for {data.metric} ({len(complete)} complete trials)")
    fig.tight_layout()
    save(fig, report, out, "param_importances", "Parameter importances")


def _numeric(data: SearchData, name: str, raw: list) -> bool:
    return name not in data.categorical and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)


def _choices(raw: list) -> list[str]:
    """The distinct values as labels, numbers in numeric order."""
    distinct = {str(v): v for v in raw}
    return sorted(distinct, key=lambda k: (0, distinct[k], "") if isinstance(distinct[k], (int, float)) else (1, 0, k))


def _axis_values(data: SearchData, name: str, trials: list[Trial]):
    """(positions in [0, 1], tick positions, tick labels) of parameter `name` over `trials`."""
    raw = [t.params.get(name) for t in trials]
    if not _numeric(data, name, raw):
        choices = _choices(raw)
        span = max(len(choices) - 1, 1)
        return ([choices.index(str(v)) / span if len(choices) > 1 else 0.5 for v in raw],
                [i / span if len(choices) > 1 else 0.5 for i in range(len(choices))], choices)
    values = np.asarray(raw, dtype=float)
    log = name in data.log_params and (values > 0).all()
    scaled = np.log10(values) if log else values
    low, high = float(scaled.min()), float(scaled.max())
    if high == low:
        return [0.5] * len(values), [0.5], [fmt(raw[0], 3)]
    ticks = np.linspace(low, high, 3)
    integers = all(isinstance(v, int) for v in raw)
    labels = [f"{10 ** x if log else x:.0f}" if integers else fmt(float(10 ** x if log else x), 3) for x in ticks]
    return list((scaled - low) / (high - low)), [0.0, 0.5, 1.0], labels


def parallel_coordinates(data: SearchData, report: Report, out: Path) -> None:
    trials = data.complete()
    names = data.params
    columns = [_axis_values(data, n, trials) for n in names]
    scores = np.asarray([t.value for t in trials], dtype=float)
    low, high = scores.min(), scores.max()
    plt = pyplot()
    from matplotlib import cm, colors
    norm = colors.Normalize(low, high if high > low else low + 1e-9)
    cmap = cm.viridis if data.direction == "maximize" else cm.viridis_r
    fig, ax = plt.subplots(figsize=(max(8, 2.2 * (len(names) + 1)), 5))
    x = np.arange(len(names) + 1)
    order = np.argsort(scores if data.direction == "maximize" else -scores)  # best drawn last, on top
    for i in order:
        ys = [c[0][i] for c in columns] + [float(norm(scores[i]))]
        ax.plot(x, ys, color=cmap(norm(scores[i])), alpha=0.85, linewidth=1.6)
    for k, (_, ticks, labels) in enumerate(columns):
        ax.axvline(k, color="black", linewidth=0.8)
        for tick, label in zip(ticks, labels):
            ax.text(k + 0.03, tick, label, fontsize=8, va="center",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1})
    ax.axvline(len(names), color="black", linewidth=0.8)
    ax.set_xticks(x, [*names, data.metric], rotation=15)
    ax.set_yticks([])
    ax.grid(False)
    ax.set_ylim(-0.05, 1.05)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=data.metric)
    ax.set_title(f"Parallel coordinates of the {len(trials)} complete trials (colour: {data.metric})")
    fig.tight_layout()
    save(fig, report, out, "parallel_coordinates", "Parallel coordinates",
         "Each line is one complete trial; each axis spans the values tried (log-scaled parameters on a log axis).")


def slices(data: SearchData, report: Report, out: Path) -> None:
    trials = data.complete()
    names = data.params
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    plt = pyplot()
    from matplotlib.ticker import NullFormatter
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.8 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    numbers = [t.number for t in trials]
    for ax, name in zip(axes.flat, names):
        raw = [t.params.get(name) for t in trials]
        values = [t.value for t in trials]
        if _numeric(data, name, raw):
            points = ax.scatter(raw, values, c=numbers, cmap="Blues", edgecolors="black", linewidths=0.5, vmin=0)
            if name in data.log_params and min(raw) > 0:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log axis overlap
        else:
            choices = _choices(raw)
            points = ax.scatter([choices.index(str(v)) for v in raw], values, c=numbers, cmap="Blues",
                                edgecolors="black", linewidths=0.5, vmin=0)
            ax.set_xticks(range(len(choices)), choices)
            ax.set_xlim(-0.5, len(choices) - 0.5)
        ax.set_xlabel(name)
        ax.set_ylabel(data.metric)
        ax.set_title(name, fontsize=11)
    fig.colorbar(points, ax=axes.ravel().tolist(), label="trial number")
    fig.suptitle(f"{data.metric} against each parameter (complete trials)")
    save(fig, report, out, "slices", "Slice plots")


def trial_states(data: SearchData, report: Report, out: Path) -> None:
    plt = pyplot()
    counts = {s: sum(t.state == s for t in data.trials) for s in STATE_COLOURS}
    with_curves = [t for t in data.trials if t.intermediate]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3), gridspec_kw={"width_ratios": [1, 2.4]})
    left.bar([s.lower() for s in counts], list(counts.values()), color=list(STATE_COLOURS.values()))
    for i, n in enumerate(counts.values()):
        left.text(i, n, str(n), ha="center", va="bottom")
    left.set_ylim(0, max(counts.values()) * 1.15 + 0.5)
    left.set_ylabel("trials")
    left.set_title("Trials by final state")
    left.yaxis.get_major_locator().set_params(integer=True)
    for trial in with_curves:
        steps = sorted(trial.intermediate)
        right.plot(steps, [trial.intermediate[s] for s in steps], color=STATE_COLOURS.get(trial.state, "black"),
                   marker="o", markersize=3, alpha=0.8, linestyle="--" if trial.state == "PRUNED" else "-")
    for state in ("COMPLETE", "PRUNED"):
        right.plot([], [], color=STATE_COLOURS[state], linestyle="--" if state == "PRUNED" else "-",
                   label=state.lower())
    right.legend()
    right.set_xlabel("epoch (step reported to the pruner)")
    right.set_ylabel(data.metric)
    right.set_title("Learning curves: complete vs pruned trials")
    right.xaxis.get_major_locator().set_params(integer=True)
    if not with_curves:
        right.text(0.5, 0.5, "no intermediate values recorded", ha="center", va="center", transform=right.transAxes)
    fig.tight_layout()
    save(fig, report, out, "trial_states", "Pruned vs complete trials",
         "Pruned trials stop early: their curves end where the pruner stopped them.")
