"""`dlx ensemble`: pool several runs with weights fitted on validation data."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from dlx.cli.common import JsonOption, console, friendly_errors, print_json
from dlx.cli.tables import fixed
from dlx.cli.tracking import MlflowOption, MlflowRequiredOption


class Method(str, Enum):
    auto = "auto"
    weighted = "weighted"
    greedy = "greedy"
    average = "average"
    stacking = "stacking"


class Metric(str, Enum):
    accuracy = "accuracy"
    nll = "nll"


@dataclass
class Column:
    """A table column: its header, how a row becomes its cell, and how readily it goes when space is short
    (keep=0: never dropped; otherwise lower goes first). A `flexible` column wraps before anything is dropped."""

    header: str
    cell: Callable[[dict], str]
    keep: int = 0
    flexible: bool = False
    min_width: int = 14


def _longest_word(column: Column, rows: list[dict]) -> int:
    """A flexible column wraps between words, never inside one: it needs its longest word."""
    return max(len(word) for text in [column.header, *(column.cell(r) for r in rows)] for word in text.split() or [""])


def fit_columns(columns: list[Column], rows: list[dict], width: int) -> list[Column]:
    """The columns that fit in `width` without cutting a cell: drop the least important ones until the table fits,
    counting a flexible column at its minimum width (it wraps)."""
    chosen = list(columns)
    while True:
        natural = {c.header: max([len(c.header)] + [len(c.cell(r)) for r in rows]) for c in chosen}
        need = sum(max(min(natural[c.header], c.min_width), _longest_word(c, rows)) if c.flexible
                   else natural[c.header] for c in chosen)
        if need + 3 * len(chosen) + 1 <= width or not any(c.keep for c in chosen):
            return chosen
        chosen.remove(min((c for c in chosen if c.keep), key=lambda c: c.keep))


def _table(title: str, columns: list[Column], rows: list[dict]):
    """A rich table of `rows` showing the columns that fit the console; cells fold rather than being cut."""
    from rich.table import Table
    chosen = fit_columns(columns, rows, console.width)
    table = Table(title=title)
    for index, column in enumerate(chosen):
        table.add_column(column.header, justify="left" if index == 0 or column.flexible else "right",
                         no_wrap=not column.flexible, overflow="fold")
    for row in rows:
        table.add_row(*(column.cell(row) for column in chosen))
    return table


def _adds(row: dict) -> str:
    loo = row.get("leave_one_out")
    return "-" if not loo else f"{100 * loo['val_accuracy_loss'] + 0.0:+.2f}"


def member_columns(result: dict) -> list[Column]:
    columns = [Column(result.get("id_title", "run"), lambda r: r["id"]),
               Column("differs", lambda r: r["differs"] or "-", keep=5, flexible=True),
               Column("weight", lambda r: "dropped" if r["dropped"] else fixed(r["weight"], 3)),
               Column("val acc", lambda r: fixed(r["val_accuracy"])),
               Column("val NLL", lambda r: fixed(r["val_nll"]), keep=6),
               Column("test acc", lambda r: fixed(r["test_accuracy"]), keep=4),
               Column("disagr.", lambda r: fixed(r["mean_disagreement"], 3), keep=2),
               Column("adds pts", _adds, keep=3)]
    if result["temperature_scaling"]:
        columns.append(Column("T", lambda r: fixed(r["temperature"], 2), keep=1))
    if not any(r["differs"] for r in result["members"]):
        columns.pop(1)
    return columns


def label(result: dict, identifier: str) -> str:
    """A member's identifier in prose: 'trial 3' where the table column says 'trial'."""
    return f"trial {identifier}" if result.get("id_title") == "trial" else identifier


def _comparison(result: dict):
    labels = {"best_member": f"best member ({label(result, result['results']['best_member']['id'])})",
              "average": "plain average", "ensemble": f"ensemble ({result['method']})"}
    rows = [{"label": label, **{f"{s} {m}": fixed(result["results"][key][s][m]) for s in ("val", "test")
                                for m in ("accuracy", "nll", "ece")}} for key, label in labels.items()]
    columns = [Column("", lambda r: r["label"], flexible=True)]
    for split, keep in (("val", 1), ("test", 3)):
        columns += [Column(f"{split} acc", lambda r, s=split: r[f"{s} accuracy"]),
                    Column(f"{split} NLL", lambda r, s=split: r[f"{s} nll"]),
                    Column(f"{split} ECE", lambda r, s=split: r[f"{s} ece"], keep=keep)]
    return _table("validation (fitted here) and test (scored only)", columns, rows)


def _print_selection(result: dict) -> None:
    selection = result["selection"]
    if selection["candidates"]:
        columns = [Column("method", lambda r: r["method"] + (" *" if r["method"] == selection["winner"] else "")),
                   Column("CV acc", lambda r: fixed(r["cv_accuracy"])), Column("CV NLL", lambda r: fixed(r["cv_nll"]))]
        console.print(_table(f"{selection['folds']}-fold CV on validation", columns, selection["candidates"]))
    console.print(f"method: {result['method']} — {selection['reason']}", highlight=False)


def _print_result(result: dict) -> None:
    _print_selection(result)
    console.print(_table(f"members ({result['method']})", member_columns(result), result["members"]))
    for row in result["members"]:
        console.print(f"  {label(result, row['id'])}: {row['reason']}", highlight=False)
    console.print(_comparison(result))
    ids = {row["run"]: label(result, row["id"]) for row in result["members"]}
    for pair in result["near_duplicates"]:
        console.print(f"[yellow]near-duplicates:[/] {ids[pair['a']]} and {ids[pair['b']]} disagree on "
                      f"{pair['disagreement']:.1%} of validation samples.", highlight=False)
    for line in result["advice"]:
        console.print(line, highlight=False)
    for item in result["skipped"]:
        console.print(f"[yellow]skipped[/] {item['run']}: {item['reason']}", highlight=False)
    cache = result["cache"]
    console.print(f"predictions: {cache['hits']} from cache, {cache['misses']} computed\n"
                  f"ensemble folder: {result['ensemble_dir']}", highlight=False)


@friendly_errors
def ensemble(run_dirs: Annotated[list[Path], typer.Argument(help="Run folders or search folders (e.g. runs/*).")],
             method: Annotated[Method, typer.Option(
                 help="How members are pooled. auto: average, weighted, weighted with per-member temperatures or "
                      "greedy, whichever cross-validates best on the validation data.")] = Method.auto,
             metric: Annotated[Metric, typer.Option(
                 help="What the ensemble is fitted and chosen for (NLL is reported beside accuracy either way).")]
             = Metric.accuracy,
             out: Annotated[Optional[Path], typer.Option(
                 help="Ensemble folder (default: runs/ensemble-<time>).")] = None,
             temperature: Annotated[bool, typer.Option(
                 "--temperature", help="Fit a temperature per member first.")] = False,
             duplicate_threshold: Annotated[float, typer.Option(
                 help="Flag pairs disagreeing on fewer than this fraction of validation samples.")] = 0.02,
             device: Annotated[str, typer.Option(
                 help="Where the members predict: auto (a CUDA GPU if one is visible, else the CPU), cpu, cuda or "
                      "cuda:N.")] = "auto",
             mlflow: MlflowOption = None, mlflow_required: MlflowRequiredOption = False,
             mlflow_experiment: Annotated[Optional[str], typer.Option(
                 help="With --mlflow: the MLflow experiment (default: the first member's spec name).")] = None,
             json: JsonOption = False) -> None:
    """Combine runs into an ensemble with weights fitted on validation data (never on test data)."""
    from dlx.core.errors import DlxError
    from dlx.ensemble import build_ensemble
    from dlx.train.mlflow_log import Tracking
    if (mlflow_required or mlflow_experiment) and not mlflow:
        raise DlxError("--mlflow-required and --mlflow-experiment need --mlflow URI.", key="--mlflow")
    tracking = Tracking(mlflow, mlflow_experiment, mlflow_required) if mlflow else None
    result = build_ensemble(run_dirs, method=method.value, metric=metric.value, out=out, temperature=temperature,
                            duplicate_threshold=duplicate_threshold, tracking=tracking, device=device)
    if json:
        print_json(result)
    else:
        _print_result(result)


COMMANDS = [ensemble]
