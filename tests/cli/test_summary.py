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
    assert summary["non_trainable_params"] == 32 and "Non-trainable params: 32\n" in table
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


INCEPTION = """\
data: {dataset: image_folder, path: no-such-folder}
model:
  layers:
    - Conv2D: {filters: 8, kernel_size: 3, padding: same, name: stem_convolution}
    - Conv2D: {filters: 4, kernel_size: 1, name: tower_one_by_one}
    - Conv2D: {filters: 4, kernel_size: 3, padding: same, name: tower_three_by_three, inputs: stem_convolution}
    - MaxPooling2D: {pool_size: 3, strides: 1, padding: same, name: tower_pool, inputs: stem_convolution}
    - Concatenate: {inputs: [tower_one_by_one, tower_three_by_three, tower_pool], name: mixed}
    - GlobalAveragePooling2D
    - Dense: {units: classes}
"""


def test_graph_summary_has_a_connected_to_column_that_fits_80_columns(write_yaml):
    spec = write_yaml(INCEPTION)
    table = run_dlx("summary", spec, *SHAPE, env={"COLUMNS": "80"}, check=0).stdout
    assert max(len(line) for line in table.splitlines()) <= 80
    header = next(line for line in table.splitlines() if "Layer (type)" in line)
    assert "Connected to" in header and "Output Shape" in header and "Param #" in header
    rows = table_rows(table)
    assert rows[0][3] == "input" and "(32, 32, 8)" in rows[0][1]  # shapes are never broken
    connected = " ".join(cells[3] for cells in rows)
    assert all(name in connected for name in ("tower_one_by_one,", "tower_three_by_three,", "tower_pool"))
    summary = json.loads(run_dlx("summary", spec, *SHAPE, "--json", check=0).stdout)
    inputs = {row["name"]: row["inputs"] for row in summary["layers"]}
    assert summary["graph"] is True and inputs["stem_convolution"] == ["input"]
    assert inputs["mixed"] == ["tower_one_by_one", "tower_three_by_three", "tower_pool"]
    assert inputs["tower_pool"] == ["stem_convolution"] and inputs["dense"] == ["global_average_pooling2d"]
    assert next(r for r in summary["layers"] if r["name"] == "mixed")["output_shape"] == [32, 32, 16]


def test_chain_summary_keeps_three_columns_and_json_still_has_inputs(write_yaml):
    spec = write_yaml(RESNET_BLOCK % "false")
    table = run_dlx("summary", spec, *SHAPE, check=0).stdout
    assert "Connected to" not in table
    summary = json.loads(run_dlx("summary", spec, *SHAPE, "--json", check=0).stdout)
    inputs = {row["name"]: row["inputs"] for row in summary["layers"]}
    assert summary["graph"] is False and inputs["conv2d"] == ["input"]
    assert inputs["add"] == ["batch_normalization_2", "batch_normalization_3"]  # the body and the shortcut's BN
    assert inputs["conv2d_1"] == ["activation"] and inputs["conv2d_3"] == ["activation"]  # both read the block input
