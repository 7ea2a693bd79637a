"""An ensemble folder's report: member weights, pairwise disagreement, accuracy vs diversity, and a reliability
diagram of the best member against the ensemble (from the members' cached test predictions)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlx.core.errors import DlxError
from dlx.core.files import read_json
from dlx.ensemble import apply_temperature, load_ensemble, member_predictions, shared_data
from dlx.core.numbers import fmt
from dlx.report.figures import Report, Table, optional_float, pyplot, save
from dlx.train.metrics import calibration_bins, ece as expected_calibration_error

BINS = 10  # confidence bins of the reliability diagram


def short(name: str) -> str:
    """A member's label: its folder name (with the search folder for a trial, whose folder is a number)."""
    path = Path(str(name))
    return f"{path.parent.parent.name}/{path.name}" if path.name.isdigit() else path.name


def ensemble_report(folder: Path, out: Path) -> Report:
    data = read_json(folder / "ensemble.json")
    if not isinstance(data, dict) or not isinstance(data.get("members"), list):
        raise DlxError("ensemble.json is missing or damaged; rebuild the ensemble with `dlx ensemble`.",
                       file=folder / "ensemble.json")
    report = Report("ensemble", f"Ensemble {folder.name} ({data.get('method')})", folder)
    results = data.get("results") or {}
    members = data["members"]
    report.numbers = {"method": data.get("method"), "members": len(members),
                      "ensemble_val_accuracy": _get(results, "ensemble", "val", "accuracy"),
                      "ensemble_test_accuracy": _get(results, "ensemble", "test", "accuracy"),
                      "best_member_test_accuracy": _get(results, "best_member", "test", "accuracy"),
                      "average_test_accuracy": _get(results, "average", "test", "accuracy"),
                      "ensemble_test_ece": _get(results, "ensemble", "test", "ece"),
                      "best_member": short(_get(results, "best_member", "run") or "")}
    rows = [[name.replace("_", " "), *[fmt(_get(results, name, split, key)) for split in ("val", "test")
                                       for key in ("accuracy", "nll", "ece")]]
            for name in ("best_member", "average", "ensemble") if name in results]
    report.tables.append(Table("Results", ["", "val accuracy", "val NLL", "val ECE", "test accuracy", "test NLL",
                                           "test ECE"], rows))
    columns = ["member", "weight", "val_accuracy", "test_accuracy", "val_nll", "test_ece", "mean_disagreement"]
    report.tables.append(Table("Members", columns, [[short(m.get("run")), *[fmt(m.get(c)) for c in columns[1:]]]
                                                    for m in members]))
    weights(members, report, out)
    if len(members) > 1:
        disagreement(members, data.get("pairs") or [], report, out)
        accuracy_vs_diversity(members, results, report, out)
    else:
        report.notes.append("A one-member ensemble has no pairs, so there is no disagreement or diversity figure.")
    reliability(folder, results, report, out)
    return report


def _get(mapping, *keys):
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def weights(members: list[dict], report: Report, out: Path) -> None:
    plt = pyplot()
    names = [short(m.get("run")) for m in members][::-1]
    values = [optional_float(m.get("weight")) or 0.0 for m in members][::-1]
    fig, ax = plt.subplots(figsize=(8, max(3.2, 0.5 * len(names) + 1.6)))
    ax.barh(names, values, color=["tab:gray" if m.get("dropped") else "tab:blue" for m in members][::-1])
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:.3f}", va="center", fontsize=9)
    ax.set_xlim(0, max(values + [1e-9]) * 1.18)
    ax.set_xlabel("weight in the ensemble (grey: dropped)")
    ax.set_title("Member weights (fitted on validation data)")
    fig.tight_layout()
    save(fig, report, out, "weights", "Member weights")


def disagreement(members: list[dict], pairs: list[dict], report: Report, out: Path) -> None:
    names = [str(m.get("run")) for m in members]
    matrix = np.zeros((len(names), len(names)))
    for pair in pairs:
        if pair.get("a") in names and pair.get("b") in names:
            i, j = names.index(pair["a"]), names.index(pair["b"])
            matrix[i, j] = matrix[j, i] = optional_float(pair.get("disagreement")) or 0.0
    labels = [short(n) for n in names]
    plt = pyplot()
    size = min(12, max(5.5, 0.6 * len(names) + 3))
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    from matplotlib import colormaps
    cmap = colormaps["magma_r"].copy()
    cmap.set_bad("#eeeeee")  # the diagonal: a member against itself
    shown = np.ma.masked_where(np.eye(len(names), dtype=bool), matrix)
    image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=max(matrix.max(), 1e-9))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of validation samples predicted differently")
    ax.grid(False)
    ax.set_xticks(range(len(names)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), labels)
    if len(names) <= 15:
        for i in range(len(names)):
            for j in range(len(names)):
                if i != j:
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=9,
                            color="white" if matrix[i, j] > 0.6 * matrix.max() else "black")
    ax.set_title("Pairwise disagreement between members (validation)")
    fig.tight_layout()
    save(fig, report, out, "disagreement", "Pairwise disagreement",
         "Pairs that almost never disagree add little to an ensemble.")


def accuracy_vs_diversity(members: list[dict], results: dict, report: Report, out: Path) -> None:
    points = [(short(m.get("run")), optional_float(m.get("mean_disagreement")), optional_float(m.get("val_accuracy")),
               optional_float(m.get("weight")) or 0.0) for m in members]
    points = [p for p in points if p[1] is not None and p[2] is not None]
    if not points:
        report.notes.append("No member has both a validation accuracy and a diversity, so that figure is left out.")
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    largest = max(p[3] for p in points) or 1.0
    ax.scatter([p[1] for p in points], [p[2] for p in points], s=[60 + 440 * p[3] / largest for p in points],
               color="tab:blue", alpha=0.7, edgecolors="black", label="member (size: weight)")
    seen: dict = {}
    for name, x, y, _ in points:  # members on the same spot get their labels stacked, not overprinted
        offset = seen.get((round(x, 4), round(y, 4)), 0)
        seen[(round(x, 4), round(y, 4))] = offset + 1
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(12, 6 - 13 * offset), fontsize=9)
    ensemble = optional_float(_get(results, "ensemble", "val", "accuracy"))
    if ensemble is not None:
        ax.axhline(ensemble, color="tab:green", linestyle="--", label=f"ensemble ({ensemble:.3f})")
    ax.margins(0.2)
    ax.set_xlabel("mean disagreement with the other members (validation)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Accuracy vs diversity of each member")
    ax.legend()
    fig.tight_layout()
    save(fig, report, out, "accuracy_vs_diversity", "Accuracy vs diversity")


def test_probabilities(folder: Path, best_run: str):
    """(labels, best member's probabilities, ensemble's probabilities) on the test split, from the cache."""
    model = load_ensemble(folder)
    unit, y = shared_data(model.members[0])
    log_probs, _ = member_predictions(model.members, unit)
    test = log_probs["test"]
    ensemble = model.pool({i: test[i] for i in model.active()})
    names = [m.name for m in model.members]
    best = names.index(best_run) if best_run in names else int(np.argmax([(p.argmax(1) == y["val"]).mean()
                                                                          for p in log_probs["val"]]))
    return y["test"], np.exp(apply_temperature(test[best], model.temperatures[best])), ensemble, names[best]


def reliability(folder: Path, results: dict, report: Report, out: Path) -> None:
    try:
        y, best_probs, ensemble_probs, best_name = test_probabilities(folder, _get(results, "best_member", "run"))
    except DlxError as exc:
        report.notes.append(f"No reliability diagram: the members' predictions could not be loaded ({exc.message})")
        return
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]},
                                      layout="constrained")
    top.plot([0, 1], [0, 1], color="gray", linestyle=":", label="perfectly calibrated")
    for label, probs, colour in ((f"best member {short(best_name)}", best_probs, "tab:orange"),
                                 ("ensemble", ensemble_probs, "tab:blue")):
        confidence, accuracy, _ = calibration_bins(probs, y, BINS)
        ece = expected_calibration_error(probs, y, BINS)
        top.plot(confidence, accuracy, marker="o", color=colour, label=f"{label} (ECE {ece:.3f})")
        bottom.hist(probs.max(1), bins=BINS, range=(0, 1), color=colour, histtype="step", linewidth=2, label=label)
        report.numbers[f"{'ensemble' if label == 'ensemble' else 'best_member'}_test_ece_{BINS}_bins"] = float(ece)
    top.set_ylabel("accuracy in the bin")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.set_title(f"Reliability diagram, test set ({len(y)} images, {BINS} confidence bins)")
    bottom.set_xlabel("confidence (highest class probability)")
    bottom.set_ylabel("images")
    handles, labels = top.get_legend_handles_labels()  # below the plots: a point can be in any corner
    fig.legend(handles, labels, loc="outside lower center", ncols=1, frameon=False)
    save(fig, report, out, "reliability", "Reliability (calibration): best member vs ensemble",
         "Points below the diagonal are over-confident; the lower panel shows how confidences are spread.")
