"""Layer graphs (`name:`, `inputs:`, merge layers) against real Keras 3: the same graph built with Keras's
functional API has the same parameter counts and output shapes row by row, and with Keras's weights copied in,
dlx's graph computes Keras's outputs. Also: Repeat's per-copy names, Residual's `shortcut:`, chain models keep
their state-dict keys, and the graph's forward is its modules called in order."""
from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from dlx.archs import build_model, count_params
from dlx.experiment.schema import ModelSpec
from tests.archs.conftest import check_forward
from tests.conftest import ROOT

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from tests.archs.test_real_keras import assert_same_outputs, keras_layers

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

WIRING = ("name", "inputs")


def conv(filters, kernel=3, **extra):
    return {"Conv2D": {"filters": filters, "kernel_size": kernel, "padding": "same", **extra}}


def two_branches(merge: dict, second: int = 4) -> list:
    """input → a (conv), and input → b (conv, `second` filters) → merge(a, b) → head."""
    return [conv(4, name="a"), conv(second, 1, name="b", inputs="input"), merge,
            {"GlobalAveragePooling2D": {}}, {"Dense": {"units": 5}}]


GRAPHS = {  # name: (Keras input shape, dlx layer list)
    **{merge.lower(): ((8, 8, 3), two_branches({merge: {"inputs": ["a", "b"]}}))
       for merge in ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]},
    "concatenate_channels": ((8, 8, 3), two_branches({"Concatenate": {"inputs": ["a", "b"]}}, second=6)),
    "concatenate_height": ((8, 8, 3), two_branches({"Concatenate": {"axis": 1, "inputs": ["a", "b"]}})),
    "concatenate_width": ((7, 9, 3), two_branches({"Concatenate": {"axis": -2, "inputs": ["a", "b"]}})),
    "add_three": ((8, 8, 3), [conv(4, name="a"), conv(4, name="b"), conv(4, name="c", inputs="a"),
                              {"Add": {"inputs": ["a", "b", "c"]}}, {"GlobalMaxPooling2D": {}},
                              {"Dense": {"units": 3}}]),
    "inception": ((9, 9, 2), [  # parallel towers joined on channels, then a second block reading the first's output
        conv(6, name="stem"), conv(4, 1, name="t1"), conv(3, 1, name="t2", inputs="stem"), conv(5, name="t2b"),
        {"MaxPooling2D": {"pool_size": 3, "strides": 1, "padding": "same", "inputs": "stem", "name": "t3"}},
        {"Concatenate": {"inputs": ["t1", "t2b", "t3"], "name": "mixed"}},
        {"BatchNormalization": {}}, {"Activation": {"activation": "relu"}},
        {"SeparableConv2D": {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"}},
        {"GlobalMaxPooling2D": {}}, {"Dense": {"units": 4}}]),
    "squeeze_excite": ((6, 6, 4), [  # a 1×1×C gate broadcast over the image by Multiply
        conv(8, name="features"), {"GlobalAveragePooling2D": {"keepdims": True}},
        {"Conv2D": {"filters": 2, "kernel_size": 1, "activation": "relu"}},
        {"Conv2D": {"filters": 8, "kernel_size": 1, "activation": "sigmoid", "name": "gate"}},
        {"Multiply": {"inputs": ["features", "gate"]}}, {"GlobalAveragePooling2D": {}}, {"Dense": {"units": 3}}]),
    "flat_branches": ((4, 4, 2), [{"GlobalMaxPooling2D": {"name": "flat"}}, {"Dense": {"units": 6, "name": "d1"}},
                                  {"Dense": {"units": 6, "inputs": "flat", "name": "d2"}},
                                  {"Subtract": {"inputs": ["d2", "d1"]}}, {"Dense": {"units": 2}}]),
}


def keras_graph(shape, layers, names):
    """The dlx graph with Keras's functional API: the same wiring rules, Keras doing the layers and the merges. Each
    layer gets dlx's row name (`names`), as Keras orders a functional model's layers its own way."""
    outputs = {"input": keras.Input(shape)}
    previous = outputs["input"]
    for entry, name in zip(layers, names):
        (kind, args), = entry.items()
        sources = args.get("inputs")
        sources = [previous] if sources is None else [outputs[n] for n in ([sources] if isinstance(sources, str)
                                                                          else sources)]
        layer = getattr(keras.layers, kind)(name=name, **{k: v for k, v in args.items() if k not in WIRING})
        previous = layer(sources if kind in MERGES else sources[0])
        outputs[name] = previous
    return keras.Model(outputs["input"], previous)


MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}


def dlx_graph(shape, layers):
    height, width, channels = shape
    return build_model(ModelSpec(layers=layers), (channels, height, width), None)


@pytest.mark.parametrize("name", GRAPHS)
def test_graph_counts_and_shapes_equal_keras_row_by_row(name):
    shape, layers = GRAPHS[name]
    ours = dlx_graph(shape, layers)
    theirs = keras_graph(shape, layers, [row.name for row in ours.rows])
    assert {row.name for row in ours.rows} == {layer.name for layer in keras_layers(theirs)}
    expected = [(layer.__class__.__name__, layer.count_params(), list(layer.output.shape[1:]))
                for layer in (theirs.get_layer(row.name) for row in ours.rows)]
    assert [(row.type, row.params, row.output_shape) for row in ours.rows] == expected
    assert sum(count_params(ours)) == theirs.count_params()


@pytest.mark.parametrize("name", GRAPHS)
def test_graph_outputs_equal_keras_with_the_same_weights(name):
    shape, layers = GRAPHS[name]
    ours = dlx_graph(shape, layers)
    theirs = keras_graph(shape, layers, [row.name for row in ours.rows])
    rng = np.random.default_rng(1)
    in_dlx_order = [theirs.get_layer(row.name) for row in ours.rows]
    for layer in in_dlx_order:
        layer.set_weights([rng.normal(size=w.shape).astype("float32") if "moving" not in v.path
                           else rng.uniform(0.5, 2.0, size=w.shape).astype("float32")
                           for w, v in zip(layer.get_weights(), layer.weights)])
    assert_same_outputs(ours, theirs, in_dlx_order, shape, rng)


def test_rows_say_what_each_layer_is_connected_to():
    model = dlx_graph(*GRAPHS["inception"])
    connected = {row.name: row.inputs for row in model.rows}
    assert connected["stem"] == ["input"] and connected["t2"] == ["stem"] and connected["t2b"] == ["t2"]
    assert connected["mixed"] == ["t1", "t2b", "t3"] and connected["batch_normalization"] == ["mixed"]


def test_graph_forward_is_its_modules_called_in_order():
    model = dlx_graph(*GRAPHS["inception"]).eval()
    stem, t1, t2, t2b, t3, mixed, bn, act, sep, pool, dense = model.layers
    x = torch.randn(2, 2, 9, 9)
    with torch.no_grad():
        s = stem(x)
        expected = dense(pool(sep(act(bn(mixed(t1(s), t2b(t2(s)), t3(s)))))))
        assert torch.equal(model(x), expected)
        assert torch.equal(mixed(t1(s), t2b(t2(s)), t3(s)), torch.cat([t1(s), t2b(t2(s)), t3(s)], 1))


def test_graph_model_copies_pickles_and_trains():
    model = dlx_graph(*GRAPHS["squeeze_excite"])
    x = torch.randn(4, 4, 6, 6)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        clone.load_state_dict(model.state_dict())
        assert torch.equal(clone.eval()(x), model.eval()(x))
    model.train()
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_repeat_suffixes_names_per_copy_and_references_follow():
    """A DenseNet-style block: each copy concatenates its input (named by Identity) with new features."""
    block = {"Repeat": {"times": "${blocks}", "layers": [
        {"Identity": {"name": "x"}}, {"BatchNormalization": {}},
        {"Conv2D": {"filters": 4, "kernel_size": 3, "padding": "same", "use_bias": False, "name": "new"}},
        {"Concatenate": {"inputs": ["x", "new"], "name": "concat"}}]}}
    model = build_model(ModelSpec(layers=[conv(6), block, "GlobalAveragePooling2D"], vars={"blocks": 3}),
                        (1, 5, 5), None)
    rows = {row.name: row for row in model.rows}
    assert [rows[f"concat_{k}"].output_shape for k in (1, 2, 3)] == [[5, 5, 10], [5, 5, 14], [5, 5, 18]]
    assert rows["concat_2"].inputs == ["x_2", "new_2"] and rows["x_2"].inputs == ["concat_1"]
    assert rows["batch_normalization_2"].params == 4 * 14  # the third copy's BN sees 6 + 4 + 4 channels
    assert check_forward(model, (1, 5, 5)).shape == (2, 18)


def test_residual_custom_shortcut_is_a_keras_resnet_conv_block():
    """`shortcut:` gives Keras ResNet50's projection: a strided 1×1 conv with bias, then BN (here 8 → 16)."""
    block = {"Residual": {"activation": "relu", "layers": [
        conv(16, 3, strides=2, use_bias=False), {"BatchNormalization": {}}],
        "shortcut": [{"Conv2D": {"filters": 16, "kernel_size": 1, "strides": 2}}, {"BatchNormalization": {}}]}}
    model = build_model(ModelSpec(layers=[block]), (8, 10, 10), None)
    assert [(r.type, r.role, r.params) for r in model.rows] == [
        ("Residual", "block", 0), ("Conv2D", "", 9 * 8 * 16), ("BatchNormalization", "", 64),
        ("Conv2D", "shortcut", 8 * 16 + 16), ("BatchNormalization", "shortcut", 64), ("Add", "", 0),
        ("Activation", "", 0)]
    assert model.rows[-2].inputs == ["batch_normalization", "batch_normalization_1"]
    x = torch.randn(2, 8, 10, 10)
    residual = model.eval().layers[0]
    with torch.no_grad():
        assert torch.equal(model(x), torch.relu(residual.body(x) + residual.shortcut(x)))
    identity = build_model(ModelSpec(layers=[{"Residual": {"layers": [conv(8)], "shortcut": []}}]), (8, 4, 4), None)
    assert [r.type for r in identity.rows] == ["Residual", "Conv2D", "Add"]


def test_chain_models_keep_their_state_dict_keys():
    """Runs trained before graphs existed must still load: a chain (with Residuals) is the same nn.Sequential."""
    model = build_model(ModelSpec(preset="resnet_small"), (3, 16, 16), 10)
    assert model.sources is None
    keys = list(model.state_dict())
    assert keys[:2] == ["layers.0.weight", "layers.1.weight"]
    assert {"layers.3.body.0.weight", "layers.3.body.1.running_var", "layers.4.shortcut.0.weight",
            "layers.4.shortcut.1.running_mean", "layers.7.weight"} <= set(keys)


def test_validation_and_shape_inference_are_torch_free():
    code = ("import sys\nfrom dlx.experiment.schema import ModelSpec\nfrom dlx.archs.parse import parse_model\n"
            "from dlx.archs.graph import plan\n"
            f"layers = {GRAPHS['inception'][1]!r}\n"
            "steps = plan(parse_model(ModelSpec(layers=layers)), (2, 9, 9))\n"
            "assert steps[5].out_shape == (15, 9, 9), steps[5].out_shape\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_automatic_names_skip_the_names_the_spec_gives():
    layers = [{"Conv2D": [4, 3], "name": "conv2d_1"}, {"Conv2D": [4, 3]}, {"Conv2D": [4, 3]},
              {"Residual": {"layers": [conv(4, name="conv2d")]}}]
    model = build_model(ModelSpec(layers=layers), (1, 12, 12), None)
    names = [row.name for row in model.rows]
    assert names == ["conv2d_1", "conv2d_2", "conv2d_3", "residual", "conv2d", "add"]
    assert len(set(names)) == len(names)


def test_residual_projects_an_odd_size_with_the_right_stride():
    """'same' padding with stride 2 maps 17 to 9: the projection shortcut needs stride 2 (not 17 // 9 = 1)."""
    block = {"Residual": {"layers": [conv(8, 3, strides=2)]}}
    model = build_model(ModelSpec(layers=[block]), (4, 17, 17), None)
    assert model.rows[0].output_shape == [9, 9, 8]
    assert model.layers[0].shortcut.stride == (2, 2)
    assert check_forward(model, (4, 17, 17)).shape == (2, 8, 9, 9)
