"""`dlx distill`: train a student spec on a teacher's softened outputs (dlx.ensemble.distill)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlx.cli.common import (JsonOption, QuietOption, SetOption, console, err_console, friendly_errors, located_in,
                            model_folder, print_json)
from dlx.cli.tables import Column, fit_table, fixed


@friendly_errors
def distill(teacher: Annotated[Path, typer.Argument(help="The teacher: an ensemble folder, a run folder, or a search "
                                                         "folder (its best trial).")],
            student: Annotated[Path, typer.Option(help="The student's experiment spec (YAML).")],
            temperature: Annotated[Optional[float], typer.Option(
                help="T that softens teacher and student outputs (default: the spec's distill.temperature, "
                     "else 2).")] = None,
            alpha: Annotated[Optional[float], typer.Option(
                help="Weight of the teacher's KL term; 1 - alpha weighs the labels (default: the spec's "
                     "distill.alpha, else 0.5).")] = None,
            set: SetOption = None,
            out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/<name>-<time>).")] = None,
            quiet: QuietOption = False, json: JsonOption = False) -> None:
    """Distil a teacher (ensemble or run) into one student model; the result is an ordinary run folder."""
    from dlx.archs.check import load_spec
    from dlx.ensemble import distill as run_distill
    from dlx.train.run import TrainingInterrupted
    teacher = Path(model_folder(teacher))
    spec = load_spec(student, set or [])
    try:
        with located_in(student):
            result = run_distill(teacher, spec, temperature, alpha, out=out, quiet=quiet or json, spec_file=student)
    except TrainingInterrupted as stop:
        err_console.print(f"interrupted; {stop.run_dir}/checkpoints/last.pt holds epoch {stop.epoch}. Continue "
                          f"with: dlx train --resume {stop.run_dir}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    if json:
        print_json({"run_dir": str(result.run_dir), **result.summary})
        return
    _print_result(result.run_dir, result.summary)


def _print_result(run_dir: Path, summary: dict) -> None:
    record = summary.get("distill") or {}
    test = record.get("test") or {}
    teacher, student = test.get("teacher") or {}, test.get("student") or {}
    columns = [Column("test", 0), Column("teacher", 0, "right"), Column("student", 0, "right")]
    rows = [["accuracy", fixed(teacher.get("accuracy")), fixed(student.get("accuracy"))],
            ["loss (NLL)", fixed(teacher.get("loss")), fixed(student.get("loss"))]]
    table, _ = fit_table(columns, rows, min(console.width, 80))
    about = record.get("teacher") or {}
    console.print(f"run folder: {run_dir}\nteacher: {about.get('kind')} {about.get('path')}\nT "
                  f"{record.get('temperature')}  alpha {record.get('alpha')}  teacher outputs: "
                  f"{record.get('targets')}", highlight=False, soft_wrap=True)
    console.print(table)


COMMANDS = [distill]
