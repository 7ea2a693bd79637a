"""Warnings for training that goes wrong without failing: a run that finishes with exit 0 and a useless model
should say so while it runs, and leave the warning in summary.json (`warnings`)."""
from __future__ import annotations

import numpy as np

CHANCE_EPOCHS = 2  # consecutive epochs of near-chance validation before warning
RISING_EPOCHS = 5  # epochs since the validation-loss minimum before calling it a rise


def warning(kind: str, epoch: int, message: str) -> dict:
    return {"kind": kind, "epoch": epoch, "message": message}


def split_warnings(labels: dict, class_names: list[str]) -> list[dict]:
    """One warning per split that lacks a class: its accuracy then says nothing about that class, and a
    validation split without it can't pick a model that knows it."""
    found = []
    counts = {split: np.bincount(np.asarray(y, dtype=np.int64), minlength=len(class_names)) for split, y in labels.items()}
    for split, per_class in counts.items():
        missing = [class_names[c] for c in np.flatnonzero(per_class == 0)]
        if missing and len(labels[split]):
            shown = ", ".join(f"'{name}'" for name in missing[:10]) + (" …" if len(missing) > 10 else "")
            sizes = ", ".join(f"{s}: {int(c.sum())}" for s, c in counts.items())
            found.append(warning("missing_class", 0, f"the {split} split has no images of class {shown} (images per "
                                 f"split: {sizes}). Likely causes: a {split} folder or file that lacks the class, "
                                 "or too few images of it for the split fraction."))
    return found


def _chance(history: list[dict], classes: int) -> dict | None:
    recent = history[-CHANCE_EPOCHS:]
    if len(recent) < CHANCE_EPOCHS or classes < 2:
        return None
    chance = 1.0 / classes
    learning = all(r["train_accuracy"] >= chance + 0.4 * (1 - chance) for r in recent)
    stuck = all(r["val_accuracy"] <= chance + 0.15 * (1 - chance) for r in recent)
    if not (learning and stuck):
        return None
    last = recent[-1]
    return warning("val_at_chance", last["epoch"], (
        f"validation accuracy is {last['val_accuracy']:.3f}, near chance ({chance:.3f}), while training accuracy "
        f"is {last['train_accuracy']:.3f}. Likely causes: validation labels that don't match the training labels "
        "(class folders named or ordered differently), validation images preprocessed differently (size, channels, "
        "value range), or batch-norm statistics that lag the weights (train.precise_bn: off)."))


def _rising(history: list[dict]) -> dict | None:
    losses = [r["val_loss"] for r in history]
    if len(losses) <= RISING_EPOCHS or not all(np.isfinite(losses)):
        return None
    lowest = int(np.argmin(losses))
    since, low, now = len(losses) - 1 - lowest, losses[lowest], losses[-1]
    training_fell = history[-1]["train_loss"] < history[lowest]["train_loss"]
    if since < RISING_EPOCHS or now - low <= max(0.25 * low, 0.05) or not training_fell:
        return None
    return warning("val_loss_rising", history[-1]["epoch"], (
        f"validation loss has risen for {since} epochs (lowest {low:.4f} at epoch {lowest + 1}, now {now:.4f}) "
        "while training loss kept falling: the model is over-fitting. The best epoch's checkpoint is kept; "
        "consider train.early_stopping.patience, more dropout or weight decay, augmentation, or fewer epochs."))


def epoch_warnings(history: list[dict], classes: int, already: list[dict]) -> list[dict]:
    """Warnings that the latest epoch newly triggers; each kind is raised once a run."""
    seen = {w["kind"] for w in already}
    found = [check for check in (_chance(history, classes), _rising(history)) if check is not None]
    return [w for w in found if w["kind"] not in seen]
