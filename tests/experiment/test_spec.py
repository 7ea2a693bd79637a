"""The experiment spec: defaults, --set overrides, ${vars}, and precise errors."""
from __future__ import annotations

import pytest

from dlx.core.errors import DlxError
from dlx.archs.check import load_spec
from dlx.experiment.load import spec_to_dict
from dlx.experiment.overrides import apply_overrides

MINIMAL = "model:\n  layers:\n    - Flatten\n    - Dense: {units: classes}\n"


def test_defaults_are_filled(write_yaml):
    spec = load_spec(write_yaml(MINIMAL))
    assert spec.data.dataset == "digits" and spec.train.optimizer.lr == 1e-3 and spec.device.type == "auto"


def test_set_overrides_nested_keys_with_yaml_values(write_yaml):
    spec = load_spec(write_yaml(MINIMAL), ["train.optimizer.lr=0.05", "train.epochs=3", "device=cpu",
                                           "model.layers.1.Dense.units=10", "data.augment={horizontal_flip: true}"])
    assert spec.train.optimizer.lr == 0.05 and spec.train.epochs == 3 and spec.device.type == "cpu"
    assert spec.model.layers[1] == {"Dense": {"units": 10}}
    assert spec.data.augment.horizontal_flip is True


def test_set_on_list_index_out_of_range_is_an_error():
    with pytest.raises(DlxError, match="not a valid index"):
        apply_overrides({"a": [1]}, ["a.5=2"])


def test_resolved_spec_round_trips(write_yaml, tmp_path):
    spec = load_spec(write_yaml(MINIMAL), ["seed=7"])
    from dlx.experiment.yamlio import dump_yaml
    again = write_yaml(dump_yaml(spec_to_dict(spec)), "again.yaml")
    assert spec_to_dict(load_spec(again)) == spec_to_dict(spec)


@pytest.mark.parametrize("text,key,fragment", [
    ("model: {layers: [Flatten]}\ntrian: {epochs: 2}\n", "trian", "Did you mean 'train'"),
    ("model: {layers: [Flatten]}\ntrain: {optimizer: {lr: 0}}\n", "train.optimizer.lr", "greater than 0"),
    ("model: {layers: [Flatten]}\ntrain: {optimizer: {lr: -1}}\n", "train.optimizer.lr", "greater than 0"),
    ("model: {layers: [Flatten]}\ntrain: {epochs: many}\n", "train.epochs", "valid integer"),
    ("model: {layers: [Flatten]}\ntrain: {optimizer: {name: adamm}}\n", "train.optimizer.name", "'adam'"),
    ("model: {layers: [Flatten]}\ndata: {dataset: mnsit}\n", "data.dataset", "Did you mean 'mnist'"),
    ("model: {layers: [{Dropout: 1.0}]}\n", "model.layers[0].Dropout.rate", "less than 1"),
    ("model: {layers: [{Dropout: -0.1}]}\n", "model.layers[0].Dropout.rate", "greater than or equal to 0"),
    ("model: {layers: [{Conv2DD: [3, 3]}]}\n", "model.layers[0]", "Did you mean 'Conv2D'"),
    ("model: {layers: [{Konv2D: [3, 3]}]}\n", "model.layers[0]", "Did you mean 'Conv2D'"),
    ("model: {layers: [{Conv2D: {filters: 3, kernal_size: 3}}]}\n", "model.layers[0].Conv2D.kernal_size",
     "Did you mean 'kernel_size'"),
    ("model: {layers: [{Conv2D: {filters: 3, activation: rellu}}]}\n", "model.layers[0].Conv2D.activation",
     "Did you mean 'relu'"),
    ("model: {layers: [{Conv2D: [3, 3, 1, valid, 9]}]}\n", "model.layers[0].Conv2D", "at most 4 positional"),
    ("model: {layers: [{Residual: {layers: []}}]}\n", "model.layers[0].Residual.layers", "at least 1"),
    ("model: {layers: [{Conv2D: {filters: '${widht}'}}], vars: {width: 3}}\n", "model.layers[0].Conv2D.filters",
     "Did you mean 'width'"),
    ("name: ../../etc\nmodel: {layers: [Flatten]}\n", "name", "outside the output folder"),
])
def test_bad_values_name_the_key_path(write_yaml, text, key, fragment):
    path = write_yaml(text)
    with pytest.raises(DlxError) as caught:
        load_spec(path)
    message = caught.value.render()
    assert str(path) in message and f"'{key}'" in message and fragment in message, message


def test_malformed_yaml_reports_line_and_column(write_yaml):
    with pytest.raises(DlxError, match=r"line 2, column \d+"):
        load_spec(write_yaml("name: x\n  bad: indent\nmodel: {layers: [Flatten]}\n"))


def test_alias_bomb_is_refused(write_yaml):
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    with pytest.raises(DlxError, match="alias"):
        load_spec(write_yaml("\n".join(lines) + "\nmodel: {layers: [Flatten]}\n"))


def test_when_and_expressions(write_yaml):
    from dlx.archs.parse import parse_model
    spec = load_spec(write_yaml("model:\n  vars: {bn: false, w: 8}\n  layers:\n"
                                "    - Conv2D: {filters: '${w * 2 + 1}', kernel_size: 3}\n"
                                "    - BatchNormalization: {when: '${bn}'}\n    - {Dropout: 0.1, when: '${w > 4}'}\n"))
    nodes = parse_model(spec.model)
    assert [n.type for n in nodes] == ["Conv2D", "Dropout"] and nodes[0].layer.filters == 17


def test_layer_names_are_case_insensitive_for_pytorch_habits(write_yaml):
    from dlx.archs.parse import parse_model
    spec = load_spec(write_yaml("model: {layers: [{conv2d: [3, 3]}, {batchnormalization: {}}]}\n"))
    assert [n.type for n in parse_model(spec.model)] == ["Conv2D", "BatchNormalization"]


def test_set_reaches_into_a_shorthand_section(write_yaml):
    spec = load_spec(write_yaml(MINIMAL + "device: cpu\n"), ["device.threads=1"])
    assert spec.device.type == "cpu" and spec.device.threads == 1
