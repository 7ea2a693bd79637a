"""Tables that fit the console (80 columns in a pipe): identifiers and numbers are never cut; when the
table is too wide, the least important columns are left out first, and only free text wraps."""
from __future__ import annotations

import re
from dataclasses import dataclass

from dlx.core.numbers import fmt

EMPTY = "-"  # a cell with no value


def fixed(value, digits: int = 4) -> str:
    """A number cell with `digits` decimals, so a column keeps its width; EMPTY for None."""
    return fmt(value, digits, style="fixed", empty=EMPTY)


@dataclass
class Column:
    header: str
    priority: float = 0      # 0 is never left out; higher numbers are left out first
    justify: str = "left"
    wrap: bool = False       # free text that may wrap at spaces; identifiers and numbers never wrap


def _words(text: str) -> list[str]:
    """Where a header may break: at spaces, and after the dots of a key path (`train.` `optimizer.` `lr`)."""
    return re.findall(r"[^\s.]+\.*|\.+", text) or [text]


def _header(text: str, width: int) -> str:
    """The header on one line where it fits, else broken after its dots (rich itself breaks only at spaces)."""
    from rich.cells import cell_len
    return text if cell_len(text) <= width else text.replace(".", ".\n")


def _widths(column: Column, cells: list[str]) -> tuple[int, int]:
    """(narrowest width that cuts nothing, width that shows every cell and the header on one line)."""
    from rich.cells import cell_len
    header = max(cell_len(w) for w in _words(column.header))
    if column.wrap:
        need = max([header] + [cell_len(w) for c in cells for w in _words(c)])
    else:
        need = max([header] + [cell_len(c) for c in cells])
    return need, max([need, cell_len(column.header)] + [cell_len(c) for c in cells])


def _total(widths) -> int:
    """Width of a boxed rich table: each column has a border and one space of padding either side."""
    return sum(w + 3 for w in widths) + 1


def fit_table(columns: list[Column], rows: list[list[str]], width: int):
    """A rich Table of `rows` no wider than `width`, and the headers of the columns left out to fit.

    Columns whose every cell is empty are left out too; a lone identifier wider than the console folds."""
    from rich.table import Table
    cells = [[row[i] for row in rows] for i in range(len(columns))]
    kept = [i for i, c in enumerate(columns) if c.priority == 0 or not rows or any(v != EMPTY for v in cells[i])]
    sizes = {i: _widths(columns[i], cells[i]) for i in kept}
    chosen = [i for i in kept if not columns[i].priority]
    for i in sorted((i for i in kept if columns[i].priority), key=lambda i: columns[i].priority):
        if _total(sizes[j][0] for j in chosen + [i]) <= width:  # the most important first; a narrow one may still fit
            chosen.append(i)
    dropped = [columns[i].header for i in kept if i not in chosen]
    kept = sorted(chosen)
    widths = {i: sizes[i][0] for i in kept}
    for i in sorted(kept, key=lambda i: columns[i].priority):  # spare room: the important columns unwrap first
        spare = width - _total(widths.values())
        widths[i] += max(0, min(spare, sizes[i][1] - widths[i]))
    if _total(widths.values()) > width:  # only the identifiers are left and still too wide: fold them
        identifiers = [i for i in kept if not columns[i].priority]
        others = sum(widths[i] + 3 for i in kept if columns[i].priority)
        for i in identifiers:
            widths[i] = max(1, (width - 1 - others) // len(identifiers) - 3)
    table = Table()
    for i in kept:
        column = columns[i]
        table.add_column(_header(column.header, widths[i]), justify=column.justify, width=widths[i], no_wrap=False,
                         overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table, dropped
