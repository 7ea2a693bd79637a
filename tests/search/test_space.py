"""Space files and distributions, in-process: each invalid input has its own check of the message."""
from __future__ import annotations

import pytest

from dlx.search.distributions import Choice, FloatRange, IntRange, parse_distribution
from dlx.search.space import load_space, parse_duration
from dlx.core.errors import DlxError


def test_float_range_checks_order():
    with pytest.raises(DlxError, match=r"`low <= high` must hold, but got \(low=0.1, high=0.01\)"):
        FloatRange(0.1, 0.01)


def test_log_needs_positive_bounds():
    with pytest.raises(DlxError, match=r"`log: true` needs bounds > 0, but got \(low=0.0, high=1.0\)"):
        FloatRange(0.0, 1.0, log=True)


def test_int_range_checks_order_and_step():
    with pytest.raises(DlxError, match="`low <= high` must hold"):
        IntRange(4, 1)
    with pytest.raises(DlxError, match="`step` must be >= 1"):
        IntRange(1, 4, step=0)


def test_choice_needs_values():
    with pytest.raises(DlxError, match="at least one value"):
        Choice(())


@pytest.mark.parametrize("raw, fragment", [
    ({"float": [1]}, "expects two bounds"),
    ({"float": [0, 1], "int": [0, 1]}, "exactly one of"),
    ({"int": [0, 1], "lgo": True}, "Did you mean 'log'?"),
    ("nope", "expected a mapping"),
])
def test_parse_distribution_errors(raw, fragment):
    with pytest.raises(DlxError) as info:
        parse_distribution(raw)
    assert fragment in info.value.render()


def test_grid_values():
    assert IntRange(16, 64, step=16).grid() == [16, 32, 48, 64]
    assert FloatRange(0.0, 0.5, step=0.25).grid() == [0.0, 0.25, 0.5]
    assert FloatRange(0.0, 0.5).grid() is None


def test_duration():
    assert parse_duration("30m") == 1800 and parse_duration(90) == 90 and parse_duration("2h") == 7200
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_space_loads_with_conditions(make_space):
    space = load_space(make_space("trials: 2\n", params="""\
params:
  model.vars.dropout: {choice: [0.0, 0.2]}
  model.vars.width: {int: [8, 16], when: {model.vars.dropout: 0.2}}
"""))
    assert space.direction == "maximize" and space.params[1].when == {"model.vars.dropout": [0.2]}
    assert space.params[1].active({"model.vars.dropout": 0.2}) and not space.params[1].active({"model.vars.dropout": 0.0})
    assert space.apply({"model.vars.width": 8})["model"]["vars"]["width"] == 8


def test_when_must_refer_to_an_earlier_param(make_space):
    with pytest.raises(DlxError, match="listed above") as info:
        load_space(make_space(params="""\
params:
  model.vars.width: {int: [8, 16], when: {model.vars.dropout: 0.2}}
  model.vars.dropout: {choice: [0.0, 0.2]}
"""))
    assert info.value.key == "params.model.vars.width.when"


def test_shipped_spaces_load():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    for name in ("search_digits.yaml", "search_mnist.yaml"):
        space = load_space(root / "configs" / name)
        assert space.params and (space.trials or space.timeout)
