"""One sentence per member saying why it got its weight: its own validation accuracy, how often it disagrees with
the others and what the ensemble loses without it (or why it was dropped)."""
from __future__ import annotations

from dlx.ensemble.selection import BEST_MEMBER, PLAIN_AVERAGE

WEAKER_BY = 0.02  # a dropped member this far below the best validation accuracy is called weaker


def _adds(row: dict) -> str:
    loo = row.get("leave_one_out")
    if not loo:
        return ""
    points = -100 * loo["val_accuracy_loss"] + 0.0  # + 0.0: no "-0.00"
    return (f"; without it the ensemble's val accuracy changes by {points:+.2f} pts and its NLL by "
            f"{loo['val_nll_loss']:+.4f}")


def member_reason(row: dict, rows: list[dict], method: str, ids: dict[str, str]) -> str:
    """Why `row` (a member row of build_ensemble's result) has its weight under `method`."""
    best = max(r["val_accuracy"] for r in rows)
    rank = 1 + sum(r["val_accuracy"] > row["val_accuracy"] for r in rows)
    own = f"val accuracy {row['val_accuracy']:.4f} (#{rank} of {len(rows)})"
    disagreement = row.get("mean_disagreement")
    differs = "" if disagreement is None else f", disagrees with the others on {disagreement:.1%} of validation samples"
    if method == BEST_MEMBER:
        return f"used alone as the best member: {own}" if row["weight"] > 0 else f"not used (best member alone); {own}"
    if row["weight"] <= 0 or row["dropped"]:
        kept = [ids[n] for n in row.get("near_duplicates", []) if any(r["run"] == n and r["weight"] > 0 for r in rows)]
        if kept:
            return f"dropped: a near-duplicate of {', '.join(kept)}, which is kept; {own}"
        if row["val_accuracy"] < best - WEAKER_BY:
            return f"dropped: weaker than the rest ({own}, best {best:.4f}){differs}"
        return f"dropped: adds nothing on validation that the kept members don't already give; {own}{differs}"
    share = "an equal share (plain average)" if method in ("average", PLAIN_AVERAGE) else f"weight {row['weight']:.3f}"
    if row.get("temperature", 1.0) != 1.0:
        share += f" at temperature {row['temperature']:.2f}"
    return f"{share}: {own}{differs}{_adds(row)}"
