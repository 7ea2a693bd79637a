"""`dlx diff A B`: what differs between two runs (or a run and a spec)."""
from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated

import typer

from dlx.cli.common import JsonOption, console, friendly_errors, print_json
from dlx.cli.tables import EMPTY, Column, fixed


def _cell(value) -> str:
    if value is None:
        return EMPTY
    if isinstance(value, float):
        return fixed(value)
    return value if isinstance(value, str) else jsonlib.dumps(value)


def _signed(value) -> str:
    return EMPTY if value is None else ("+" if value > 0 else "") + _cell(value)


def _print_rows(title: str, rows: list[dict], difference: bool = False) -> None:
    from dlx.cli.tables import fit_table
    columns = [Column("key"), Column("A", 1), Column("B", 1)] + ([Column("B - A", 2, "right")] if difference else [])
    cells = [[r["key"], _cell(r["a"]), _cell(r["b"])] + ([_signed(r["difference"])] if difference else [])
             for r in rows]
    console.print(title, highlight=False, soft_wrap=True)
    table, _ = fit_table(columns, cells, console.width)
    console.print(table)


def _data_line(data: dict) -> str:
    if data["same"] is None:
        return f"data: fingerprints A {data['a'] or EMPTY}, B {data['b'] or EMPTY} (a spec's is known once it trains)"
    return f"data: same ({data['a']})" if data["same"] else f"data: differs (A {data['a']}, B {data['b']})"


@friendly_errors
def diff(a: Annotated[Path, typer.Argument(help="A run folder or spec file.")],
         b: Annotated[Path, typer.Argument(help="Another run folder or spec file.")],
         json: JsonOption = False) -> None:
    """Show what differs between two runs (or a run and a spec): spec keys, data, provenance and metrics."""
    from dlx.report.diff import diff as compare
    result = compare(a, b)
    if json:
        print_json(result)
        return
    console.print(f"A: {result['a']['path']} ({result['a']['kind']})\nB: {result['b']['path']} "
                  f"({result['b']['kind']})", highlight=False, soft_wrap=True)
    spec = result["spec"]
    if spec:
        _print_rows(f"spec: {len(spec)} key(s) differ", spec)
    else:
        console.print("spec: the same", highlight=False)
    console.print(_data_line(result["data"]), highlight=False, soft_wrap=True)
    if result["provenance"]:
        _print_rows(f"provenance: {len(result['provenance'])} field(s) differ", result["provenance"])
    if result["metrics"]:
        _print_rows("metrics", result["metrics"], difference=True)


COMMANDS = [diff]
