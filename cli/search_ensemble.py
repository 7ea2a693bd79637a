"""`dlx search --ensemble K`: after the search, an ensemble of up to K of its finished trials, written inside the
search folder. It lives in cli because search and ensemble are sibling packages that never import each other;
only the layer above both may join them, through their public APIs.

The members are chosen for complementary errors, not as the top K: ensemble's greedy method (Caruana's forward
selection with replacement on validation data) runs over every finished trial that still has its checkpoint, and
the K trials it picked most often are then pooled with the `auto` method (which may still weight them)."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from dlx.core.errors import DlxError
from dlx.core.files import read_json

ENSEMBLE_DIR = "ensemble"


def candidates(search_dir: Path) -> list[Path]:
    """Finished (COMPLETE, feasible) trials of the search whose best checkpoint is still on disk."""
    rows = read_json(Path(search_dir) / "leaderboard.json", []) or []
    found = []
    for row in rows:
        run_dir = Path(row.get("run_dir") or "")
        if row.get("state") == "COMPLETE" and row.get("feasible") is not False \
                and (run_dir / "checkpoints" / "best.pt").is_file():
            found.append(run_dir)
    return found


def greedy_members(paths: list[Path], k: int) -> list[Path]:
    """Up to `k` of `paths`, those greedy selection on validation data picks most often."""
    from dlx.ensemble import build_ensemble
    scratch = Path(tempfile.mkdtemp(prefix="dlx-greedy-"))
    try:
        result = build_ensemble(paths, method="greedy", out=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = sorted(result["members"], key=lambda r: -r["weight"])
    return [Path(r["run"]) for r in rows if r["weight"] > 0][:k]


def search_ensemble(search_dir: Path, k: int, best: dict | None) -> dict:
    """Build `<search_dir>/ensemble` from up to `k` trials; returns {ensemble_dir, members, ensemble, best}
    with validation and test accuracy of the ensemble and of the search's best trial."""
    from dlx.ensemble import build_ensemble
    if k < 2:
        raise DlxError(f"--ensemble needs K >= 2 (an ensemble of one is its member), but got {k}.", key="--ensemble")
    paths = candidates(search_dir)
    if len(paths) < 2:
        raise DlxError(f"--ensemble needs at least 2 finished trials with checkpoints, but the search has "
                       f"{len(paths)}; run more trials or raise `keep:` in the space.", file=search_dir,
                       key="--ensemble")
    chosen = greedy_members(paths, k)
    if len(chosen) < 2:  # greedy found one trial best alone: pool the two best trials instead
        chosen = paths[:2]
    out = Path(search_dir) / ENSEMBLE_DIR
    result = build_ensemble(chosen, method="auto", out=out)
    scores = result["results"]["ensemble"]
    return {"ensemble_dir": str(out), "members": [str(p) for p in chosen], "method": result["method"],
            "candidates": len(paths),
            "ensemble": {"val_accuracy": scores["val"]["accuracy"], "test_accuracy": scores["test"]["accuracy"]},
            "best": {"trial": (best or {}).get("trial"),
                     "test_accuracy": ((best or {}).get("test") or {}).get("accuracy")}}
