"""How different the members are: pairwise disagreement and error correlation on validation data,
and near-duplicates, which add little to an ensemble."""
from __future__ import annotations

import numpy as np

DUPLICATE_BELOW = 0.02  # pairs disagreeing on fewer than 2% of validation samples are near-duplicates
DUPLICATE_ADVICE = ("near-duplicate members add little: retraining the same model with another seed is a poor source "
                    "of diversity; vary the architecture, the data augmentation or the training recipe instead.")


def error_correlation(wrong_a: np.ndarray, wrong_b: np.ndarray) -> float | None:
    """Pearson correlation of two 0/1 error indicators (None when either model makes no errors)."""
    a, b = wrong_a.astype(float), wrong_b.astype(float)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def pairs(names: list[str], log_probs: np.ndarray, y: np.ndarray, threshold: float = DUPLICATE_BELOW) -> list[dict]:
    """For every pair of members: disagreement rate, error correlation and the near-duplicate flag."""
    predicted = log_probs.argmax(2)
    wrong = predicted != y[None]
    result = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            disagreement = float((predicted[i] != predicted[j]).mean()) if len(y) else float("nan")
            result.append({"a": names[i], "b": names[j], "disagreement": disagreement,
                           "error_correlation": error_correlation(wrong[i], wrong[j]),
                           "near_duplicate": bool(disagreement < threshold)})
    return result


def member_diversity(names: list[str], pair_list: list[dict]) -> dict[str, dict]:
    """Per member: mean disagreement with the others and the members it nearly duplicates."""
    summary = {n: {"mean_disagreement": [], "near_duplicates": []} for n in names}
    for pair in pair_list:
        for me, other in ((pair["a"], pair["b"]), (pair["b"], pair["a"])):
            summary[me]["mean_disagreement"].append(pair["disagreement"])
            if pair["near_duplicate"]:
                summary[me]["near_duplicates"].append(other)
    return {n: {"mean_disagreement": float(np.mean(s["mean_disagreement"])) if s["mean_disagreement"] else None,
                "near_duplicates": s["near_duplicates"]} for n, s in summary.items()}
