"""The Keras layers of `archs.keras_layers` (and global pooling's `keepdims`) against real Keras 3 on its torch
backend: the same layer list has Keras's parameter counts and output shapes row by row, and with Keras's weights
copied in, the same outputs."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from dlx.archs import build_model
from dlx.core.errors import DlxError
from dlx.experiment.schema import ModelSpec
from tests.archs.test_real_keras import assert_same_outputs, dlx_model, keras_layers, keras_model, to_torch

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

MODELS = {
    "pad_crop_upsample": ((7, 9, 3), [
        {"ZeroPadding2D": {"padding": [[1, 2], [0, 3]]}}, {"Conv2D": {"filters": 4, "kernel_size": 3}},
        {"Cropping2D": {"cropping": [1, 2]}}, {"UpSampling2D": {"size": [2, 3]}},
        {"ZeroPadding2D": {"padding": 2}}, {"Cropping2D": {"cropping": [[0, 1], [2, 0]]}},
        {"UpSampling2D": {"size": 2, "interpolation": "bilinear"}}, {"GlobalMaxPooling2D": {"keepdims": True}},
        {"Reshape": {"target_shape": [-1]}}, {"Dense": {"units": 3}}]),
    "relus": ((6, 6, 2), [
        {"Conv2D": {"filters": 5, "kernel_size": 1}}, {"ReLU": {"max_value": 6.0}},
        {"Conv2D": {"filters": 5, "kernel_size": 1}}, {"ReLU": {"negative_slope": 0.1}},
        {"Conv2D": {"filters": 5, "kernel_size": 1}}, {"ReLU": {"max_value": 0.5, "negative_slope": 0.2, "threshold": 0.3}},
        {"Conv2D": {"filters": 5, "kernel_size": 1}}, {"ReLU": {"threshold": 0.1}}, {"ReLU": {"max_value": 2.5}},
        {"ReLU": {}}]),
    "transpose": ((3, 4, 3), [
        {"Conv2DTranspose": {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}},
        {"Conv2DTranspose": {"filters": 3, "kernel_size": 2, "strides": 3, "activation": "relu"}},
        {"Conv2DTranspose": {"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same", "use_bias": False}},
        {"Conv2DTranspose": {"filters": 2, "kernel_size": [3, 5], "strides": [1, 2], "dilation_rate": 1}},
        {"Conv2DTranspose": {"filters": 3, "kernel_size": 3, "strides": 2, "output_padding": 1}},
        {"Conv2DTranspose": {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"}},
        {"Conv2DTranspose": {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 0}},
        {"Conv2DTranspose": {"filters": 2, "kernel_size": 2, "strides": 3, "padding": "same"}}]),
    "layer_norm_reshape": ((4, 6, 3), [
        {"LayerNormalization": {}}, {"Conv2D": {"filters": 8, "kernel_size": 3, "padding": "same"}},
        {"Reshape": {"target_shape": [8, 3, 8]}}, {"LayerNormalization": {"epsilon": 1e-5, "center": False}},
        {"GlobalAveragePooling2D": {"keepdims": True}}, {"Reshape": {"target_shape": [2, 2, -1]}},
        {"Reshape": {"target_shape": [-1]}},
        {"Dense": {"units": 6}}, {"LayerNormalization": {"scale": False}}]),
}


def copied_weights(layer) -> list[np.ndarray]:
    kind, weights = layer.__class__.__name__, layer.get_weights()
    if kind == "Conv2DTranspose":  # Keras (kh, kw, out, in) → torch (in, out, kh, kw)
        return [weights[0].transpose(3, 2, 0, 1), *weights[1:]]
    return to_torch(layer, weights)


@pytest.mark.parametrize("name", MODELS)
def test_counts_shapes_and_outputs_equal_keras(name):
    shape, layers = MODELS[name]
    ours, theirs = dlx_model(shape, layers), keras_model(shape, layers)
    expected = [(layer.__class__.__name__, layer.count_params(), list(layer.output.shape[1:]))
                for layer in keras_layers(theirs)]
    assert [(row.type, row.params, row.output_shape) for row in ours.rows] == expected
    rng = np.random.default_rng(1)
    for layer in keras_layers(theirs):
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    assert_same_outputs(ours, theirs, keras_layers(theirs), shape, rng, convert=copied_weights, count=2,
                        relative_atol=1e-5)


@pytest.mark.parametrize("item,message", [
    ({"Reshape": {"target_shape": [5, -1]}}, "target_shape must be (features,) or (height, width, channels)"),
    ({"ZeroPadding2D": {"padding": -1}}, "every amount must be 0 or more"),
    ({"ReLU": {"max_value": -1}}, "greater than or equal to 0"),
    ({"Conv2DTranspose": {"filters": 2, "strides": 2, "output_padding": 2}},
     "output_padding must be smaller than strides"),
    ({"LayerNormalization": {"axis": 1}}, "input should be -1"),
])
def test_bad_arguments_are_one_user_error(item, message):
    with pytest.raises(DlxError) as error:
        build_model(ModelSpec(layers=[item, "Flatten", {"Dense": 2}]), (2, 4, 4), None)
    assert message in str(error.value)
    assert f"model.layers[0].{next(iter(item))}" in str(error.value)


def test_reshape_to_a_different_size_is_refused():
    with pytest.raises(DlxError, match=r"Reshape cannot turn \(channels=2, height=4, width=4\) \(32 values\) "
                                       r"into \[7\]"):
        build_model(ModelSpec(layers=[{"Reshape": {"target_shape": [7]}}]), (2, 4, 4), None)
