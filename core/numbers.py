"""The one way numbers become text in tables, live displays and reports, so a value reads alike everywhere."""
from __future__ import annotations

DASH = "–"  # a missing value in reports


def _real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fmt(value, digits: int = 4, *, style: str = "auto", empty: str = DASH) -> str:
    """`value` as text; None is `empty`, and what is not a number is `str(value)`.

    style "auto" (reports): floats with `digits` decimals (significant digits when very large or small),
    integers with thousands separators, booleans as yes/no. "fixed": every number with `digits` decimals, so a
    column keeps its width. "general": floats with `digits` significant digits. "thousands": thousands
    separators. "plain": str(value)."""
    if value is None:
        return empty
    if style == "auto":
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            small_or_large = abs(value) >= 1e4 or (value and abs(value) < 1e-3)
            return f"{value:.{digits}g}" if small_or_large else f"{value:.{digits}f}"
        if isinstance(value, int):
            return f"{value:,}"
    elif style == "fixed" and _real(value):
        return f"{value:.{digits}f}"
    elif style == "general" and isinstance(value, float):
        return f"{value:.{digits}g}"
    elif style == "thousands" and _real(value):
        return f"{value:,}"
    return str(value)
