"""Layer arguments are checked when the spec is read, so `dlx config` and `dlx summary` refuse what would divide
by zero in shape inference or quietly build something else: exit 2, the argument's own key, no traceback."""
from __future__ import annotations

import pytest

from tests.conftest import assert_user_error, run_dlx

SPEC = """\
name: t
data: {{dataset: digits}}
model:
  layers:
    - {layer}
    - Flatten
    - Dense: {{units: classes}}
"""


@pytest.mark.parametrize("layer, key, fragment", [
    ("Conv2D: {filters: 8, kernel_size: 3, strides: 0}", "Conv2D.strides", "greater than 0 (got 0)"),
    ("Conv2D: {filters: 8, kernel_size: -3}", "Conv2D.kernel_size", "greater than 0 (got -3)"),
    ("Conv2D: {filters: 8, kernel_size: 0}", "Conv2D.kernel_size", "greater than 0 (got 0)"),
    ("Conv2D: {filters: 8, kernel_size: [3, -1]}", "Conv2D.kernel_size.1", "greater than 0 (got -1)"),
    ("Conv2D: {filters: 8, kernel_size: 3, dilation_rate: 0}", "Conv2D.dilation_rate", "greater than 0"),
    ("MaxPooling2D: {pool_size: 0}", "MaxPooling2D.pool_size", "greater than 0 (got 0)"),
    ("AveragePooling2D: {pool_size: 2, strides: 0}", "AveragePooling2D.strides", "greater than 0"),
    ("Conv2D: {filters: true, kernel_size: 3}", "Conv2D.filters", "expected a number, not true"),
    ("Dense: {units: false}", "Dense.units", "expected a number, not false"),
])
@pytest.mark.parametrize("command", ["config", "summary"])
def test_a_bad_layer_argument_is_refused_at_its_key(write_yaml, command, layer, key, fragment):
    spec = write_yaml(SPEC.format(layer=layer))
    assert_user_error(run_dlx(command, spec), f"at 'model.layers[0].{key}'", fragment)


def test_a_boolean_argument_still_takes_true_and_false(write_yaml):
    spec = write_yaml(SPEC.format(layer="Conv2D: {filters: 8, kernel_size: 3, use_bias: false}"))
    assert run_dlx("config", spec, check=0).returncode == 0
