"""`dlx --help`, `dlx config`, `dlx summary` and every bad input of the spec issue, through the real CLI."""
from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, assert_user_error, run_dlx

SHIPPED = sorted(p.name for p in (ROOT / "configs").glob("*.yaml") if not p.name.startswith("search"))


def test_help_lists_the_commands():
    result = run_dlx("--help", check=0)
    for command in ("train", "evaluate", "summary", "config"):
        assert command in result.stdout


@pytest.mark.parametrize("config", SHIPPED)
def test_summary_works_on_every_shipped_config(config):
    result = run_dlx("summary", f"configs/{config}", "--json", check=0)
    summary = json.loads(result.stdout)
    assert summary["trainable_params"] > 0 and summary["layers"]
    assert set(summary["layers"][0]) >= {"name", "type", "output_shape", "params"}
    table = run_dlx("summary", f"configs/{config}", check=0).stdout
    assert "Trainable params" in table


def test_summary_json_matches_keras_reference(write_yaml):
    path = write_yaml("""
data: {dataset: mnist}
model:
  layers:
    - Conv2D: {filters: 32, kernel_size: 3, activation: relu}
    - BatchNormalization
    - SeparableConv2D: [64, 3, {activation: relu}]
""".replace(", {activation: relu}]", "]") + """    - SeparableConv2D: {filters: 128, kernel_size: 3, activation: relu}
    - MaxPooling2D: 2
    - GlobalAveragePooling2D
    - Dense: {units: classes}
""")
    summary = json.loads(run_dlx("summary", path, "--json", check=0).stdout)
    assert summary["trainable_params"] == 12_970 and summary["non_trainable_params"] == 64
    assert summary["layers"][0]["output_shape"] == [26, 26, 32]
    assert summary["layers"][-1]["output_shape"] == [10]


def test_config_prints_resolved_spec_with_overrides():
    import yaml
    result = run_dlx("config", "configs/digits.yaml", "--set", "train.epochs=3", "--set", "train.optimizer.lr=0.01",
                     check=0)
    resolved = yaml.safe_load(result.stdout)
    assert resolved["train"]["epochs"] == 3 and resolved["train"]["optimizer"]["lr"] == 0.01
    assert resolved["train"]["optimizer"]["weight_decay"] == 0.0  # defaults filled in


BAD = {
    "malformed yaml": ("model:\n  layers: [Flatten\n", ["malformed YAML", "line"]),
    "misspelt key": ("model: {layers: [Flatten]}\ntrain: {epocs: 3}\n", ["'train.epocs'", "Did you mean 'epochs'"]),
    "wrong type": ("model: {layers: [Flatten]}\ntrain: {batch_size: big}\n", ["'train.batch_size'", "integer"]),
    "lr not positive": ("model: {layers: [Flatten]}\ntrain: {optimizer: {lr: 0}}\n", ["'train.optimizer.lr'"]),
    "dropout out of range": ("model: {layers: [Flatten, {Dropout: 1.5}]}\n", ["'model.layers[1].Dropout.rate'"]),
    "unknown layer": ("model: {layers: [{Conv3D: [3, 3]}]}\n", ["'model.layers[0]'", "unknown layer type 'Conv3D'"]),
    "unknown activation": ("model: {layers: [{Dense: [3, relux]}]}\n", ["'model.layers[0].Dense.activation'",
                                                                       "Did you mean 'relu'"]),
    "too many positional": ("model: {layers: [{Dense: [3, relu, 4]}]}\n", ["'model.layers[0].Dense'", "positional"]),
    "empty residual": ("model: {layers: [{Residual: {layers: []}}]}\n", ["'model.layers[0].Residual.layers'"]),
    "shrinks below 1": ("model: {layers: [{Conv2D: [4, 3]}, {Conv2D: [4, 3]}, {Conv2D: [4, 3]}, {Conv2D: [4, 3]}, "
                        "{Conv2D: [4, 3]}, Flatten, {Dense: [10]}]}\n",
                        ["'model.layers[3].Conv2D'", "layer 3", "height=2, width=2", "shrinks below 1"]),
}


CASES = [(command, case) for case in sorted(BAD) for command in ("summary", "config")
         if not (command == "config" and case == "shrinks below 1")]  # config checks no shapes: it builds no model


@pytest.mark.parametrize("command,case", CASES)
def test_bad_input_exits_2_with_one_paragraph(write_yaml, command, case):
    text, fragments = BAD[case]
    path = write_yaml(text)
    message = assert_user_error(run_dlx(command, path), str(path), *fragments)
    assert message.count("error:") == 1


def test_missing_file_says_so(tmp_path):
    assert_user_error(run_dlx("summary", tmp_path / "nope.yaml"), "not found", "nope.yaml")


def test_bad_set_syntax(write_yaml):
    assert_user_error(run_dlx("config", write_yaml("model: {layers: [Flatten]}\n"), "--set", "train.epochs"),
                      "--set expects key.path=value")
