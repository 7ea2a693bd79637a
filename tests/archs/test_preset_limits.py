"""A preset's vars are checked against the preset's own `limits` when the spec is read, so `dlx config` and
`dlx summary` refuse `alpha: -1` at `model.vars.alpha` instead of building some other model."""
from __future__ import annotations

import pytest

from dlx.archs.parse import parse_model, resolve_model
from dlx.archs.registry import PRESETS
from dlx.core.errors import DlxError
from dlx.experiment.schema import ModelSpec
from dlx.experiment.yamlio import load_yaml_mapping
from tests.conftest import assert_user_error, run_dlx


@pytest.mark.parametrize("value,fragment", [("-1", "-1"), ("0", "0"), ("true", "True"), ("wide", "'wide'"),
                                            ("null", "None")])
@pytest.mark.parametrize("command", [["config"], ["summary", "--input-shape", "32,32,3", "--classes", "10"]])
def test_mobilenet_alpha_must_be_above_zero(value, fragment, command, write_yaml):
    spec = write_yaml(f"data: {{dataset: digits}}\nmodel: {{preset: mobilenet_v2, vars: {{alpha: {value}}}}}\n")
    result = run_dlx(command[0], spec, *command[1:])
    assert_user_error(result, "spec.yaml", "model.vars.alpha", "mobilenet_v2", "a number above 0", fragment)


@pytest.mark.parametrize("preset,var,value", [
    ("resnet18", "blocks3", True), ("resnet18", "blocks3", -2), ("resnet18", "eps", 0), ("resnet18", "width", 2.5),
    ("plain_cnn", "dropout", 1.0), ("densenet121", "growth", 0), ("xception", "middle_blocks", -1),
    ("mini_xception", "blocks", 1.5)])
def test_each_preset_refuses_vars_outside_its_limits(preset, var, value):
    with pytest.raises(DlxError, match=f"{preset}'s var '{var}' must be") as error:
        parse_model(ModelSpec(preset=preset, vars={var: value}))
    assert error.value.key == f"model.vars.{var}"


@pytest.mark.parametrize("name", sorted(PRESETS.names()))
def test_every_preset_var_has_limits_its_defaults_meet(name):
    preset = load_yaml_mapping(PRESETS.get(name), "preset")
    assert sorted(preset.get("limits", {})) == sorted(preset.get("vars", {}))
    parse_model(ModelSpec(preset=name))  # the defaults are inside the limits
    assert resolve_model(ModelSpec(preset=name))[1] == preset.get("vars", {})


def test_values_inside_the_limits_still_build():
    parse_model(ModelSpec(preset="mobilenet_v2", vars={"alpha": 0.35}))
    parse_model(ModelSpec(preset="resnet18", vars={"blocks3": 1, "width": 8, "eps": 1e-3}))
