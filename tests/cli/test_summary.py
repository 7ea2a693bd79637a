"""`dlx summary` as Keras prints model.summary(): every row's Param # holds all of the layer's parameters, so the
rows add up to the total; a Residual shows its shortcut and its addition; --input-shape/--classes stand in for the
dataset; `shortcut_use_bias: false` gives a Keras ResNet's projection shortcut."""
from __future__ import annotations

import json

import pytest

from tests.conftest import assert_user_error, run_dlx

RESNET_BLOCK = """\
data: {dataset: image_folder, path: no-such-folder}   # never read: --input-shape and --classes replace it
model:
  layers:
    - Conv2D: {filters: 16, kernel_size: 3, padding: same, use_bias: false}
    - BatchNormalization
    - Activation: relu
    - Residual:           # Keras ResNet v1: strided 1x1 projection without bias, then batch norm
        activation: relu
        shortcut_bn: true
        shortcut_use_bias: %s
        layers:
          - Conv2D: {filters: 32, kernel_size: 3, strides: 2, padding: same, use_bias: false}
          - BatchNormalization
          - Activation: relu
          - Conv2D: {filters: 32, kernel_size: 3, padding: same, use_bias: false}
          - BatchNormalization
    - GlobalAveragePooling2D
    - Dense: {units: classes}
"""
SHAPE = ("--input-shape", "32,32,3", "--classes", "10")


def keras_resnet_block_params(shortcut_bias: bool) -> int:
    """The block above in Keras on 32×32×3 with 10 classes, from Keras's formulas (BN: gamma, beta, moving mean and
    variance per channel)."""
    def conv(k, cin, cout, bias=False):
        return k * k * cin * cout + (cout if bias else 0)
    bn = 4
    stem = conv(3, 3, 16) + bn * 16
    body = conv(3, 16, 32) + bn * 32 + conv(3, 32, 32) + bn * 32
    shortcut = conv(1, 16, 32, bias=shortcut_bias) + bn * 32
    return stem + body + shortcut + 32 * 10 + 10


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table, as lists of stripped cells."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()
            if line.startswith("│")]


def test_param_column_counts_all_parameters_so_rows_add_up(write_yaml):
    spec = write_yaml("model:\n  layers: [{Conv2D: [16, 3]}, BatchNormalization, Flatten, {Dense: {units: classes}}]\n")
    table = run_dlx("summary", spec, "--input-shape", "8,8,1", "--classes", "10", check=0).stdout
    rows = {cells[0]: cells[2] for cells in table_rows(table)}
    assert rows["batch_normalization (BatchNormalization)"] == "64"  # as Keras: gamma, beta, moving mean, variance
    total = sum(int(p.replace(",", "")) for p in rows.values() if p)
    assert f"Total params: {total:,}" in table
    summary = json.loads(run_dlx("summary", spec, "--input-shape", "8,8,1", "--classes", "10", "--json",
                                 check=0).stdout)
    assert sum(row["params"] for row in summary["layers"]) == summary["total_params"] == total
    assert summary["non_trainable_params"] == 32 and f"Non-trainable params: 32\n" in table
    assert f"Trainable params: {total - 32:,}\n" in table


def test_residual_shows_its_shortcut_and_addition(write_yaml):
    spec = write_yaml(RESNET_BLOCK % "false")
    table = run_dlx("summary", spec, *SHAPE, check=0).stdout
    rows = table_rows(table)
    names = [cells[0] for cells in rows]
    start = names.index("residual (Residual)")
    assert names[start + 1:start + 9] == [
        "conv2d_1 (Conv2D)", "batch_normalization_1 (BatchNormalization)", "activation_1 (Activation)",
        "conv2d_2 (Conv2D)", "batch_normalization_2 (BatchNormalization)", "conv2d_3 (Conv2D, shortcut)",
        "batch_normalization_3 (BatchNormalization, shortcut)", "add (Add)"]
    params = {cells[0]: cells[2] for cells in rows}
    assert params["conv2d_3 (Conv2D, shortcut)"] == f"{16 * 32}" and params["add (Add)"] == "0"
    assert params["batch_normalization_3 (BatchNormalization, shortcut)"] == "128"


@pytest.mark.parametrize("bias", [False, True])
def test_shortcut_use_bias_matches_keras(write_yaml, bias):
    spec = write_yaml(RESNET_BLOCK % str(bias).lower())
    summary = json.loads(run_dlx("summary", spec, *SHAPE, "--json", check=0).stdout)
    assert summary["total_params"] == keras_resnet_block_params(bias)


def test_input_shape_and_classes_replace_the_dataset(write_yaml):
    spec = write_yaml(RESNET_BLOCK % "true")
    assert_user_error(run_dlx("summary", spec), "no-such-folder")
    summary = json.loads(run_dlx("summary", spec, "--input-shape", "24, 20, 1", "--classes", "7", "--json",
                                 check=0).stdout)
    assert summary["input_shape"] == [24, 20, 1] and summary["classes"] == 7
    assert summary["layers"][0]["output_shape"] == [24, 20, 16] and summary["layers"][-1]["output_shape"] == [7]


@pytest.mark.parametrize("args,fragment", [
    (["--input-shape", "32,32"], "expected H,W,C such as 32,32,3"),
    (["--input-shape", "32,x,3"], "got '32,x,3'"),
    (["--input-shape", "0,32,3"], "positive whole number"),
    (["--input-shape", "100000,100000,3"], "more than the"),
    (["--input-shape", "8,8,1", "--classes", "0"], "between 1 and 1000000, but got 0"),
])
def test_bad_input_shape_or_classes_is_one_paragraph(write_yaml, args, fragment):
    spec = write_yaml(RESNET_BLOCK % "true")
    assert_user_error(run_dlx("summary", spec, *args), fragment)
