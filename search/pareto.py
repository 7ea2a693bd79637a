"""The Pareto front of a search with several objectives: ranks by non-dominated sorting over the feasible COMPLETE
trials, `pareto.json` with a ready spec per front member (`pareto/<number>.yaml`), and `pick`: the most accurate
front member meeting a condition such as "params <= 20000" (during a search or on a finished search folder)."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional

from dlx.core.errors import DlxError
from dlx.core.files import atomic_write_json, atomic_write_text, read_json
from dlx.experiment.yamlio import dump_yaml
from dlx.search.objectives import Goal, parse_constraint

PARETO_JSON = "pareto.json"
PARETO_DIR = "pareto"


def dominates(a: list[float], b: list[float], goals: list[Goal]) -> bool:
    """`a` is at least as good as `b` in every objective and better in one."""
    no_worse = all(not g.better(y, x) for g, x, y in zip(goals, a, b))
    return no_worse and any(g.better(x, y) for g, x, y in zip(goals, a, b))


def pareto_ranks(points: dict[int, list[float]], goals: list[Goal]) -> dict[int, int]:
    """Trial number → front (1 = non-dominated; 2 = non-dominated once front 1 is removed; ...)."""
    ranks, left, rank = {}, dict(points), 1
    while left:
        front = [n for n, v in left.items() if not any(dominates(w, v, goals) for m, w in left.items() if m != n)]
        for number in front:
            ranks[number] = rank
            del left[number]
        rank += 1
    return ranks


def _finite(values) -> bool:
    return bool(values) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def rank_rows(rows: list[dict], goals: list[Goal]) -> None:
    """Set `pareto_rank` on each leaderboard row: feasible COMPLETE trials get their front, the others None."""
    points = {r["number"]: [r["values"].get(g.metric) for g in goals] for r in rows
              if r["state"] == "COMPLETE" and r.get("feasible", True) and isinstance(r.get("values"), dict)}
    ranks = pareto_ranks({n: v for n, v in points.items() if _finite(v)}, goals)
    for row in rows:
        row["pareto_rank"] = ranks.get(row["number"])


def write_front(rows: list[dict], space, search_dir: Path) -> list[dict]:
    """pareto.json and pareto/<number>.yaml for the rank-1 leaderboard rows; specs of trials that left the front
    are removed. Returns the front, most accurate first."""
    folder = Path(search_dir) / PARETO_DIR
    folder.mkdir(exist_ok=True)
    front = []
    for row in rows:
        if row.get("pareto_rank") != 1:
            continue
        spec = folder / f"{row['number']}.yaml"
        atomic_write_text(spec, f"# trial {row['number']}, on the Pareto front of this search; ready for "
                                f"`dlx train`\n" + dump_yaml(space.apply(row["params"])))
        front.append({"number": row["number"], "values": row["values"], "metrics": row.get("metrics") or {},
                      "params": row["params"], "run_dir": row["run_dir"], "spec": str(spec.resolve())})
    front.sort(key=_accuracy_key)
    for old in folder.glob("*.yaml"):
        if old.stem not in {str(m["number"]) for m in front}:
            old.unlink()
    atomic_write_json(Path(search_dir) / PARETO_JSON, {
        "objectives": [g.to_dict() for g in space.goals], "constraints": [str(c) for c in space.constraints],
        "front": front})
    return front


def _accuracy_key(member: dict):
    """Most accurate first: highest val_accuracy, then lowest val_loss, then trial number."""
    metrics = {**member.get("metrics", {}), **member.get("values", {})}
    accuracy, loss = metrics.get("val_accuracy"), metrics.get("val_loss")
    return (-(accuracy if _finite([accuracy]) else -math.inf), loss if _finite([loss]) else math.inf,
            member["number"])


def parse_pick(expression: str) -> list:
    """'params <= 20000' or several joined by `,` or `and` → Constraints."""
    parts = [p for p in re.split(r",|\band\b", str(expression)) if p.strip()]
    if not parts:
        raise DlxError("--pick needs a condition such as \"params <= 20000\".", key="--pick")
    return [parse_constraint(p.strip(), key="--pick") for p in parts]


def pick(search_dir: Path, expression: str) -> dict:
    """The most accurate member of the search's Pareto front meeting `expression`; also written to picked.json."""
    search_dir = Path(search_dir)
    conditions = parse_pick(expression)
    data = read_json(search_dir / PARETO_JSON)
    if not isinstance(data, dict):
        raise DlxError("this search folder has no pareto.json: --pick chooses from the Pareto front of a search "
                       "with several `objectives:`.", file=search_dir, key="--pick")
    front = sorted(data.get("front") or [], key=_accuracy_key)
    metrics = [{**m.get("metrics", {}), **m.get("values", {})} for m in front]
    chosen = next((m for m, v in zip(front, metrics) if all(c.holds(v.get(c.metric)) for c in conditions)), None)
    if chosen is None:
        raise DlxError(f"no trial on the Pareto front meets {expression!r}; {_closest(conditions[0], metrics)}",
                       file=search_dir / PARETO_JSON, key="--pick")
    picked = {**chosen, "pick": expression}
    atomic_write_json(search_dir / "picked.json", picked)
    return picked


def _closest(condition, metrics: list[dict]) -> str:
    values = [v.get(condition.metric) for v in metrics if _finite([v.get(condition.metric)])]
    if not values:
        return f"no front member recorded {condition.metric}."
    near = min(values) if condition.op in ("<=", "<") else max(values)
    return f"the front's {condition.metric} reaches {near:g} at best; loosen the condition."


def front_of(search_dir: Path) -> Optional[list[dict]]:
    data = read_json(Path(search_dir) / PARETO_JSON)
    return data.get("front") if isinstance(data, dict) else None
