"""A run folder's report: loss/accuracy and learning-rate curves, the test confusion matrix and the test
images the model gets most wrong."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dlx.core.numbers import fmt
from dlx.report.figures import Report, Table, optional_float, pyplot, save
from dlx.train.metrics import confusion_counts
from dlx.train.rundir import read_metrics, read_summary

WORST = 16          # images in the worst-classified grid
MAX_CLASS_LABELS = 20  # above this, the confusion matrix has no per-cell numbers


def read_history(folder: Path) -> list[dict]:
    """metrics.jsonl rows (metrics.csv if the JSON lines are missing); a damaged file is a DlxError naming the
    line and field."""
    rows = []
    if (folder / "metrics.jsonl").is_file():
        rows = read_metrics(folder)
    elif (folder / "metrics.csv").is_file():
        with (folder / "metrics.csv").open() as handle:
            for row in csv.DictReader(handle):
                rows.append({k: float(v) if v not in ("", None) else None for k, v in row.items()})
    return rows


def run_report(folder: Path, out: Path) -> Report:
    summary = read_summary(folder)
    report = Report("run", f"Run {summary.get('name') or folder.name}", folder)
    keys = ("status", "dataset", "best_epoch", "epochs", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
            "trainable_params", "wall_seconds", "images_per_second", "device")
    report.numbers = {k: summary.get(k) for k in keys}
    report.tables.append(Table("Summary", ["key", "value"], [[k, fmt(v)] for k, v in report.numbers.items()]))
    history = read_history(folder)
    if history:
        best_epoch = summary.get("best_epoch")
        curves(history, best_epoch, report, out)
        lr_curve(history, report, out)
        columns = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
        report.tables.append(Table("Metrics per epoch", columns,
                                   [[fmt(r.get(c), 6 if c == "lr" else 4) for c in columns] for r in history]))
    else:
        report.notes.append("No metrics yet: this run has not finished an epoch, so there are no curves.")
    if (folder / "checkpoints" / "best.pt").is_file():
        test_figures(folder, report, out)
    else:
        report.notes.append("No checkpoints/best.pt (a pruned search trial, or checkpoints deleted), so there is no "
                            "confusion matrix or worst-image grid.")
    return report


def _series(history: list[dict], key: str):
    points = [(r["epoch"], optional_float(r.get(key))) for r in history]
    points = [(e, v) for e, v in points if v is not None]
    return [e for e, _ in points], [v for _, v in points]


def curves(history: list[dict], best_epoch, report: Report, out: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    marker = "o" if len(history) <= 30 else None
    for ax, metric, label in ((axes[0], "loss", "Loss (cross-entropy)"), (axes[1], "accuracy", "Accuracy")):
        for split, colour in (("train", "tab:blue"), ("val", "tab:orange")):
            epochs, values = _series(history, f"{split}_{metric}")
            ax.plot(epochs, values, marker=marker, markersize=4, color=colour,
                    label="train" if split == "train" else "validation")
        if best_epoch:
            ax.axvline(best_epoch, color="tab:green", linestyle="--", linewidth=1.2, label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: train vs validation")
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    save(fig, report, out, "curves", "Loss and accuracy per epoch",
         "The dashed line marks the epoch whose weights were kept (checkpoints/best.pt).")


def lr_curve(history: list[dict], report: Report, out: Path) -> None:
    epochs, values = _series(history, "lr")
    if not values:
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, values, marker="o" if len(epochs) <= 30 else None, markersize=4, color="tab:purple")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate (at the end of the epoch)")
    ax.set_title("Learning-rate schedule")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    save(fig, report, out, "learning_rate", "Learning rate per epoch")


def test_predictions(folder: Path):
    """(test inputs scaled to [0, 1] as they are read, labels, log-probabilities, class names) from the run's best
    checkpoint."""
    import torch
    from dlx.train.data import load_splits
    from dlx.train.data.access import ScaledInputs, open_split
    from dlx.train.device import pick_device
    from dlx.train.evaluate import load_run_model
    from dlx.train.loop import predict_logits
    model, spec, checkpoint = load_run_model(folder)
    plan = pick_device(spec.device)
    splits = load_splits(spec.data)
    data = open_split(splits, "test", plan.device)  # streamed when the run streamed: never decoded whole
    logits = predict_logits(plan.place(model), data, plan).float().cpu()
    unit = ScaledInputs(splits.x["test"], splits.scale)  # the grid decodes only the images it shows
    names = list(checkpoint["data"].get("class_names") or splits.class_names)
    return unit, splits.y["test"].astype(np.int64), torch.log_softmax(logits, 1).numpy(), names


def test_figures(folder: Path, report: Report, out: Path) -> None:
    unit, y, log_probs, names = test_predictions(folder)
    predicted = log_probs.argmax(1)
    report.numbers["test_samples"] = int(len(y))
    report.numbers["test_accuracy_recomputed"] = float((predicted == y).mean()) if len(y) else None
    confusion_matrix(y, predicted, names, report, out)
    if unit.ndim == 4:
        worst_grid(unit, y, log_probs, names, report, out)
    else:
        report.notes.append("The inputs are not images, so there is no worst-image grid.")


def confusion_matrix(y, predicted, names, report: Report, out: Path) -> None:
    classes = len(names)
    matrix = confusion_counts(y, predicted, classes)
    report.numbers["confusion_matrix"] = matrix.tolist()
    plt = pyplot()
    size = min(12, max(6, 0.45 * classes + 3))
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.grid(False)
    if classes <= MAX_CLASS_LABELS:
        ticks = np.arange(classes)
        ax.set_xticks(ticks, [str(n) for n in names], rotation=45 if max(map(len, map(str, names))) > 3 else 0)
        ax.set_yticks(ticks, [str(n) for n in names])
        for i in range(classes):
            for j in range(classes):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=9,
                            color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"Confusion matrix, test set ({matrix.sum()} images, accuracy {accuracy:.3f})")
    fig.tight_layout()
    save(fig, report, out, "confusion_matrix", "Confusion matrix (test set)",
         "Rows are true classes, columns predictions; colour is the share of each true class.")


def worst_grid(unit, y, log_probs, names, report: Report, out: Path) -> None:
    losses = -log_probs[np.arange(len(y)), y]
    order = np.argsort(-losses)[:WORST]
    plt = pyplot()
    columns = 4 if len(order) > 8 else max(1, len(order))
    rows = max(1, -(-len(order) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, order):
        image = np.clip(unit[index], 0.0, 1.0)
        if image.shape[0] == 1:  # aspect: square pixels whatever the matplotlib settings
            ax.imshow(image[0], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest", aspect="equal")
        else:
            ax.imshow(np.transpose(image[:3], (1, 2, 0)), interpolation="nearest", aspect="equal")
        wrong = log_probs[index].argmax() != y[index]
        ax.set_title(f"true {names[y[index]]}, pred {names[log_probs[index].argmax()]}\nloss {losses[index]:.2f}",
                     fontsize=10, color="tab:red" if wrong else "black")
    fig.suptitle(f"The {len(order)} test images with the highest loss (red: misclassified)")
    fig.tight_layout()
    save(fig, report, out, "worst_test_images", "Worst-classified test images",
         "Shown as stored in the dataset (before normalisation).")
    report.numbers["worst_test_images"] = [{"index": int(i), "true": str(names[y[i]]),
                                            "predicted": str(names[log_probs[i].argmax()]), "loss": float(losses[i])}
                                           for i in order]
