"""Each way a layer graph can be wrong, through the real CLI: one paragraph naming the file, the key path and the
rule, exit 2, no traceback. Wiring errors are found when the spec is read (no input shape needed)."""
from __future__ import annotations

import pytest

from tests.conftest import assert_user_error, run_dlx

HEAD = "data: {dataset: image_folder, path: nowhere}   # never read: --input-shape and --classes replace it\n"
SHAPE = ("--input-shape", "8,8,3", "--classes", "10")
TAIL = "    - GlobalAveragePooling2D\n    - Dense: {units: classes}\n"

CASES = {
    "unknown input": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: stem}
    - Conv2D: {filters: 4, kernel_size: 1, inputs: stme}
""", ["'model.layers[1].Conv2D.inputs'", "refers to 'stme'", "no layer before this one has that name",
      "the names are: input, stem", "Did you mean 'stem'?"]),
    "cycle": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: a, inputs: b}
    - Conv2D: {filters: 4, kernel_size: 3, name: b}
""", ["'model.layers[0].Conv2D.inputs'", "refers to 'b'", "comes after it (layer 1)", "cycle"]),
    "a layer taking itself": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: a}
    - Conv2D: {filters: 4, kernel_size: 3, name: b, inputs: b}
""", ["'model.layers[1].Conv2D.inputs'", "refers to 'b'", "this layer", "cycle"]),
    "duplicate name": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: a}
    - Conv2D: {filters: 4, kernel_size: 3, name: a}
""", ["'model.layers[1].Conv2D.name'", "'a' is used twice", "unique"]),
    "duplicate name inside a Residual": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: a}
    - Residual: {layers: [{Conv2D: {filters: 4, kernel_size: 3, padding: same, name: a}}]}
""", ["'model.layers[1].Residual.name'", "'a' is used twice"]),
    "output nobody uses": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: lost}
    - Conv2D: {filters: 4, kernel_size: 3, inputs: input}
""", ["'model.layers[0].Conv2D'", "output of 'lost' is used by no later layer", "not the model's output"]),
    "unnamed output nobody uses": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: a}
    - BatchNormalization
    - Conv2D: {filters: 4, kernel_size: 3, inputs: a}
""", ["'model.layers[1].BatchNormalization'", "output of BatchNormalization (layer 1) is used by no later layer"]),
    "merge with one input": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: a}
    - Add: {inputs: a}
""", ["'model.layers[1].Add.inputs'", "Add merges at least 2 inputs", "got 1"]),
    "subtract with three": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: a}
    - Conv2D: {filters: 4, kernel_size: 3, name: b, inputs: input}
    - Subtract: {inputs: [a, b, a]}
""", ["'model.layers[2].Subtract.inputs'", "Subtract merges exactly 2 inputs", "got 3"]),
    "two inputs to a one-input layer": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: a}
    - Conv2D: {filters: 4, kernel_size: 3, inputs: [a, input]}
""", ["'model.layers[1].Conv2D.inputs'", "Conv2D takes one input", "merge layer such as Add or Concatenate"]),
    "inputs inside a Residual": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, padding: same, name: a}
    - Residual: {layers: [{Conv2D: {filters: 4, kernel_size: 3, padding: same, inputs: a}}]}
""", ["'model.layers[1].Residual.layers[0].Conv2D.inputs'", "inside a Residual form a chain"]),
    "bad name": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, name: input}
""", ["'model.layers[0].Conv2D.name'", "not 'input'"]),
    "name on a Repeat": ("""\
    - Repeat: {times: 2, name: r, layers: [BatchNormalization]}
""", ["'model.layers[0].Repeat'", "give them to the layers inside it"]),
}

SHAPE_CASES = {
    "a reshape to another size": ("""\
    - Conv2D: {filters: 4, kernel_size: 3}
    - Reshape: {target_shape: [5, 5, 4]}
""", ["'model.layers[1].Reshape'", "Reshape cannot turn", "(144 values) into [5, 5, 4]"]),
    "shapes that can't be added": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, padding: same, name: wide}
    - Conv2D: {filters: 4, kernel_size: 3, name: narrow, inputs: input}
    - Add: {inputs: [wide, narrow]}
""", ["'model.layers[2].Add'", "Add needs equal shapes", "input 'wide' is (channels=4, height=8, width=8)",
      "'narrow' is (channels=4, height=6, width=6)"]),
    "shapes that can't be concatenated": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, padding: same, name: a}
    - MaxPooling2D: {pool_size: 2, name: b}
    - Concatenate: {inputs: [a, b]}
""", ["'model.layers[2].Concatenate'", "along axis -1 needs the other sizes equal",
      "'a' is (channels=4, height=8, width=8)", "'b' is (channels=4, height=4, width=4)"]),
    "concatenate on the batch axis": ("""\
    - Conv2D: {filters: 4, kernel_size: 3, padding: same, name: a}
    - Concatenate: {axis: 0, inputs: [a, input]}
""", ["'model.layers[1].Concatenate'", "axis 0 is not an axis"]),
    "a shortcut that does not match": ("""\
    - Residual:
        layers: [{Conv2D: {filters: 8, kernel_size: 3, strides: 2, padding: same}}]
        shortcut: [{Conv2D: {filters: 8, kernel_size: 1}}]
""", ["'model.layers[0].Residual.shortcut'", "layers output (channels=8, height=4, width=4)",
      "shortcut outputs (channels=8, height=8, width=8)"]),
}


def spec_text(layers: str) -> str:
    return HEAD + "model:\n  layers:\n" + layers + TAIL


@pytest.mark.parametrize("case", CASES)
def test_wiring_error_is_one_paragraph_when_the_spec_is_read(case, write_yaml):
    layers, fragments = CASES[case]
    spec = write_yaml(spec_text(layers))
    message = assert_user_error(run_dlx("config", spec), *fragments)
    assert "spec.yaml:" in message  # file and line: where to look, before any data is read


@pytest.mark.parametrize("case", SHAPE_CASES)
def test_shape_error_names_both_inputs(case, write_yaml):
    layers, fragments = SHAPE_CASES[case]
    spec = write_yaml(spec_text(layers))
    assert_user_error(run_dlx("summary", spec, *SHAPE), *fragments)


def test_train_refuses_a_broken_graph_before_reading_data(write_yaml, tmp_path):
    spec = write_yaml(spec_text(CASES["unknown input"][0]))
    assert_user_error(run_dlx("train", spec, "--out", tmp_path / "run"), "Did you mean 'stem'?")
    assert not (tmp_path / "run").exists()
