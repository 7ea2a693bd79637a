"""`dlx report` as a Python function: a run, search or ensemble folder → figures (PNG + SVG), report.html
and report.json in the folder's `report/` (or `out`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from dlx.core.errors import DlxError
from dlx.core.files import atomic_write_text
from dlx.core.lazy import resolve
from dlx.core.registry import Registry
from dlx.report.figures import Report
from dlx.report.html import render
from dlx.report.runs import classify
from dlx.train.outdir import claim


# folder kind → "module:function" making its Report, imported only when that kind is reported (the ensemble
# builder needs torch, the search builder optuna)
BUILDERS: Registry[str] = Registry("report kind")
BUILDERS.register("run", "dlx.report.figures_run:run_report")
BUILDERS.register("search", "dlx.report.figures_search:search_report")
BUILDERS.register("ensemble", "dlx.report.figures_ensemble:ensemble_report")


def builder(kind: str):
    """The function that makes the Report of a `kind` folder: `builder(kind)(folder, out)`."""
    return resolve(BUILDERS.get(kind))


def make_report(path: str | Path, out: Optional[str | Path] = None) -> dict:
    """Write the report of the folder `path`; returns {kind, folder, out, html, json, files: [...]}.

    The report folder is locked while it is written (train.outdir); `path` itself is only read, never locked."""
    folder = Path(path)
    if not folder.is_dir():
        raise DlxError("no such folder.", file=folder)
    kind = classify(folder)
    if kind is None:
        raise DlxError("not a dlx folder: expected a run (summary.json, config.yaml), a search (study.db, trials/) "
                       "or an ensemble (ensemble.yaml).", file=folder)
    with claim(Path(out) if out is not None else folder / "report", "report") as held:
        held.mark()
        out = held.path
        report: Report = builder(kind)(folder, out)
        html_path, json_path = out / "report.html", out / "report.json"
        atomic_write_text(html_path, render(report))
        atomic_write_text(json_path, json.dumps(as_json(report), indent=2, default=str) + "\n")
    files = [str(p) for f in report.figures for p in (f.png, f.svg)] + [str(html_path), str(json_path)]
    return {"kind": kind, "folder": str(folder), "out": str(out), "html": str(html_path), "json": str(json_path),
            "figures": [{"name": f.name, "title": f.title, "png": str(f.png), "svg": str(f.svg)}
                        for f in report.figures], "notes": report.notes, "files": files}


def as_json(report: Report) -> dict:
    """report.json: the machine-readable twin of report.html."""
    return {"kind": report.kind, "title": report.title, "folder": str(report.folder), "numbers": report.numbers,
            "figures": [{"name": f.name, "title": f.title, "png": f.png.name, "svg": f.svg.name, "caption": f.caption}
                        for f in report.figures],
            "tables": [{"title": t.title, "columns": t.columns, "rows": t.rows} for t in report.tables],
            "notes": report.notes}
