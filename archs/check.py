"""A whole spec checked: its sections (`experiment`) and its layers against the layer vocabulary (here, in
`archs`, which owns that vocabulary). Every command that reads a spec comes through this module."""
from __future__ import annotations

from pathlib import Path

from dlx.archs.graph import wire
from dlx.archs.parse import check_vars_referenced, parse_model
from dlx.core.errors import DlxError
from dlx.experiment.load import parse_sections, read_spec_file, split_key
from dlx.experiment.schema import ExperimentSpec
from dlx.experiment.yamlio import line_of


def validate_spec(data: dict, file: str | Path | None = None, text: str | None = None,
                  strict_vars: bool = False) -> ExperimentSpec:
    """`strict_vars` refuses vars that no layer references: right for what a person just wrote, wrong for a
    checkpoint's spec, which must keep loading."""
    spec = parse_sections(data, file, text)
    try:
        wire(parse_model(spec.model))  # names and inputs are checked before any shape is known
        if strict_vars:
            check_vars_referenced(spec.model.vars, spec.model)
    except DlxError as exc:
        raise DlxError(exc.message, file=file, key=exc.key, hint=exc.hint,
                       line=line_of(text, split_key(exc.key)) if text and exc.key else None) from None
    return spec


def load_spec(path: str | Path, overrides: list[str] | None = None) -> ExperimentSpec:
    """Read, override and validate a spec file. Raises DlxError with file and key path."""
    data, text = read_spec_file(path, overrides)
    return validate_spec(data, path, text, strict_vars=True)
