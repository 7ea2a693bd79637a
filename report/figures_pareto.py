"""The Pareto figure of a multi-objective search: every finished trial in the plane of the first objective against
each other one, the front (pareto.json) highlighted and joined, infeasible trials hollow. Read from the search
folder's pareto.json and leaderboard.json, so it needs no study storage."""
from __future__ import annotations

import math
from pathlib import Path

from dlx.core.files import read_json
from dlx.core.numbers import fmt
from dlx.report.figures import Report, Table, pyplot, save

FRONT_COLOUR = "tab:red"


def _point(row: dict, x: str, y: str):
    values = {**(row.get("metrics") or {}), **(row.get("values") or {})}
    a, b = values.get(x), values.get(y)
    finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (a, b))
    return (a, b) if finite else None


def pareto_front(folder: Path, report: Report, out: Path) -> None:
    """Add the Pareto scatter and the front's table to `report`."""
    data = read_json(folder / "pareto.json", {}) or {}
    rows = read_json(folder / "leaderboard.json", []) or []
    goals = [next(iter(g.items())) for g in data.get("objectives") or []]
    front = data.get("front") or []
    if len(goals) < 2:
        return
    first = goals[0][0]
    others = goals[1:]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(others), figsize=(6.2 * len(others), 4.6), squeeze=False)
    numbers = {m["number"] for m in front}
    for ax, (metric, way) in zip(axes[0], others):
        _panel(ax, rows, front, numbers, metric, first, join=len(others) == 1)
        ax.set_xlabel(f"{metric} ({way})")
        ax.set_ylabel(f"{first} ({goals[0][1]})")
        if metric in ("params", "mflops") and _spread(rows, metric) > 30:
            ax.set_xscale("log")
    axes[0][0].legend()
    fig.suptitle(f"Pareto front: {len(front)} of {sum(r.get('state') == 'COMPLETE' for r in rows)} complete trials")
    fig.tight_layout()
    save(fig, report, out, "pareto", "Pareto front",
         "Red: trials no other feasible trial beats in every objective (pareto.json); hollow: trials breaking a "
         "constraint; crosses: pruned trials at their last values.")
    report.numbers["pareto_front"] = sorted(numbers)
    names = [g[0] for g in goals]
    report.tables.append(Table("Pareto front", ["trial", *names, "spec"],
                               [[m["number"], *[fmt(m["values"].get(n)) for n in names], Path(m["spec"]).name]
                                for m in front]))


def _spread(rows: list[dict], metric: str) -> float:
    values = [v for r in rows for v in [((r.get("values") or {}) | (r.get("metrics") or {})).get(metric)]
              if isinstance(v, (int, float)) and v > 0]
    return max(values) / min(values) if values else 1.0


def _panel(ax, rows: list[dict], front: list[dict], numbers: set, x: str, y: str, join: bool) -> None:
    """One plane; with two objectives the front is joined (with more, a projection of it would mislead)."""
    groups = {"complete": [], "infeasible": [], "pruned": []}
    for row in rows:
        point = _point(row, x, y)
        if point is None or row.get("number") in numbers:
            continue
        if row.get("state") == "PRUNED":
            groups["pruned"].append(point)
        elif row.get("state") == "COMPLETE":
            groups["infeasible" if row.get("feasible") is False else "complete"].append(point)
    styles = {"complete": {"color": "tab:blue"}, "infeasible": {"facecolors": "none", "edgecolors": "tab:gray"},
              "pruned": {"color": "tab:gray", "marker": "x"}}
    for name, points in groups.items():
        if points:
            ax.scatter(*zip(*points), label=f"{name} ({len(points)})", zorder=2, **styles[name])
    on_front = sorted(p for p in (_point(m, x, y) for m in front) if p is not None)
    if on_front:
        ax.scatter(*zip(*on_front), color=FRONT_COLOUR, s=60, zorder=4, label=f"Pareto front ({len(on_front)})")
        if join:
            ax.plot(*zip(*on_front), color=FRONT_COLOUR, alpha=0.5, zorder=3)
    for member in front:
        point = _point(member, x, y)
        if point is not None:
            ax.annotate(str(member["number"]), point, textcoords="offset points", xytext=(4, 4), fontsize=8)
