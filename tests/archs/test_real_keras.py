"""The YAML vocabulary against real Keras (3.x on its torch backend): the same layer list, given to
`keras.layers` with the same names and arguments, has Keras's parameter counts and output shapes row by row,
and with Keras's weights copied in, dlx's model computes Keras's outputs."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")  # in the test extra, so CI runs this

from dlx.archs import build_model  # noqa: E402
from dlx.experiment.schema import ModelSpec  # noqa: E402

# Keras 3.15's torch backend calls numpy's __array__ without `copy`: its own deprecation, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

MODELS = {
    "course_cnn": ((28, 28, 1), [
        {"Conv2D": {"filters": 32, "kernel_size": 3, "activation": "relu"}}, {"BatchNormalization": {}},
        {"SeparableConv2D": {"filters": 64, "kernel_size": 3}}, {"MaxPooling2D": {"pool_size": 2}},
        {"SeparableConv2D": {"filters": 128, "kernel_size": 3, "padding": "same", "activation": "relu"}},
        {"GlobalAveragePooling2D": {}}, {"Dropout": {"rate": 0.5}}, {"Dense": {"units": 10}}]),
    "strides_and_dilation": ((17, 15, 3), [
        {"Conv2D": {"filters": 8, "kernel_size": 5, "strides": 2, "padding": "same", "use_bias": False}},
        {"BatchNormalization": {"center": False}}, {"Activation": {"activation": "relu"}},
        {"DepthwiseConv2D": {"kernel_size": 3, "depth_multiplier": 2, "dilation_rate": 2}},
        {"AveragePooling2D": {"pool_size": 2, "strides": 1}},
        {"SeparableConv2D": {"filters": 12, "kernel_size": 3, "depth_multiplier": 3, "strides": 2}},
        {"GlobalMaxPooling2D": {}}, {"Dense": {"units": 7, "activation": "tanh"}}, {"Dense": {"units": 4}}]),
    "flatten_dense": ((8, 8, 1), [
        {"Conv2D": {"filters": 6, "kernel_size": 3, "padding": "same", "activation": "relu"}},
        {"MaxPooling2D": {"pool_size": 3, "padding": "same"}}, {"Flatten": {}},
        {"Dense": {"units": 16, "activation": "relu"}}, {"Dense": {"units": 10}}]),
}


def keras_model(shape, layers):
    inputs = keras.Input(shape)
    x = inputs
    for entry in layers:
        (name, args), = entry.items()
        x = getattr(keras.layers, name)(**args)(x)
    return keras.Model(inputs, x)


def dlx_model(shape, layers):
    height, width, channels = shape
    return build_model(ModelSpec(layers=layers), (channels, height, width), None)


def keras_layers(model):
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


@pytest.mark.parametrize("name", MODELS)
def test_parameter_counts_and_shapes_equal_keras_row_by_row(name):
    shape, layers = MODELS[name]
    ours, theirs = dlx_model(shape, layers), keras_model(shape, layers)
    expected = [(layer.__class__.__name__, layer.count_params(), list(layer.output.shape[1:]))
                for layer in keras_layers(theirs)]
    assert [(row.type, row.params, row.output_shape) for row in ours.rows] == expected
    assert sum(row.params for row in ours.rows) == theirs.count_params()


def to_torch(layer, weights: list[np.ndarray]) -> list[np.ndarray]:
    """Keras's channels-last weights in torch's layout, in the order of dlx's state_dict."""
    kind = layer.__class__.__name__
    if kind == "Conv2D":
        return [weights[0].transpose(3, 2, 0, 1), *weights[1:]]
    if kind == "DepthwiseConv2D":  # (kh, kw, cin, multiplier) → (cin·multiplier, 1, kh, kw), channel c·m + k
        kh, kw, cin, multiplier = weights[0].shape
        return [weights[0].reshape(kh, kw, cin * multiplier).transpose(2, 0, 1)[:, None], *weights[1:]]
    if kind == "SeparableConv2D":
        depthwise, pointwise, *bias = weights
        kh, kw, cin, multiplier = depthwise.shape
        return [depthwise.reshape(kh, kw, cin * multiplier).transpose(2, 0, 1)[:, None],
                pointwise.transpose(3, 2, 0, 1), *bias]
    if kind == "Dense":
        return [weights[0].T, *weights[1:]]
    return weights  # BatchNormalization: gamma, beta, moving mean, moving variance, in dlx's order too


@pytest.mark.parametrize("name", ["course_cnn", "strides_and_dilation"])
def test_outputs_equal_keras_with_the_same_weights(name):
    shape, layers = MODELS[name]
    ours, theirs = dlx_model(shape, layers), keras_model(shape, layers)
    rng = np.random.default_rng(0)
    for layer in keras_layers(theirs):  # random moving statistics, so inference-mode BN is really compared
        layer.set_weights([rng.normal(size=w.shape).astype("float32") if "moving" not in v.path
                           else rng.uniform(0.5, 2.0, size=w.shape).astype("float32")
                           for w, v in zip(layer.get_weights(), layer.weights)])
    assert_same_outputs(ours, theirs, keras_layers(theirs), shape, rng, count=4)


def assert_same_outputs(ours, theirs, in_order, shape: tuple, rng, convert=None, count: int = 3,
                        relative_atol: float | None = None) -> None:
    """Copy the Keras layers' weights (`in_order`: dlx's order of layers) into `ours`, trainable ones and batch
    norm's moving statistics, and check that both models give the same outputs on `count` random images (to 1e-4,
    or to `relative_atol` × the largest output)."""
    convert = convert or (lambda layer: to_torch(layer, layer.get_weights()))
    copied = [array for layer in in_order for array in convert(layer)]
    trained = dict(ours.named_parameters())  # and the moving statistics; not a constant beta or gamma
    tensors = [key for key in ours.state_dict() if key in trained or key.endswith(("running_mean", "running_var"))]
    assert len(tensors) == len(copied)
    ours.load_state_dict({key: torch.from_numpy(np.ascontiguousarray(array)) for key, array in zip(tensors, copied)},
                         strict=False)
    images = rng.normal(size=(count, *shape)).astype("float32")
    expected = np.asarray(keras.ops.convert_to_numpy(theirs(images, training=False)))
    with torch.no_grad():
        got = ours.eval()(torch.from_numpy(images).permute(0, 3, 1, 2))
    got = (got.permute(0, 2, 3, 1) if got.dim() == 4 else got).numpy()
    atol = 1e-4 if relative_atol is None else relative_atol * np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=atol)
