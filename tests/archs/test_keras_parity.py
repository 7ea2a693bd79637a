"""Parameter counts and output shapes equal Keras's, computed here from Keras's formulas. The numbers written
in these tests are what Keras 3.15.1 (`model.summary()`, `count_params()`) prints for the same models;
`test_real_keras.py` builds models in real Keras and compares row by row."""
from __future__ import annotations

import pytest
import torch

from dlx.archs import build_model, count_params
from dlx.experiment.schema import ModelSpec
from tests.archs.conftest import check_forward


def build(layers, input_shape, classes=None, **vars):
    return build_model(ModelSpec(layers=layers, vars=vars), input_shape, classes)


def conv_params(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def separable_params(k, cin, cout, multiplier=1):
    return k * k * cin * multiplier + cin * multiplier * cout + cout


def test_reference_model_matches_keras():
    layers = [{"Conv2D": {"filters": 32, "kernel_size": 3, "activation": "relu"}}, {"BatchNormalization": {}},
              {"SeparableConv2D": [64, 3, 1, "valid"]}, {"SeparableConv2D": {"filters": 128, "kernel_size": 3}},
              {"MaxPooling2D": 2}, "GlobalAveragePooling2D", {"Dense": {"units": 10}}]
    model = build(layers, (1, 28, 28))
    trainable, non_trainable = count_params(model)
    assert trainable == 12_970
    assert non_trainable == 64  # BN moving mean + variance, as Keras reports them
    shapes = [row.output_shape for row in model.rows]
    assert shapes == [[26, 26, 32], [26, 26, 32], [24, 24, 64], [22, 22, 128], [11, 11, 128], [128], [10]]
    # Keras's Param #: BatchNormalization(32) has gamma, beta and the two moving statistics (4 × 32)
    expected = [conv_params(3, 1, 32), 128, separable_params(3, 32, 64), separable_params(3, 64, 128), 0, 0, 128 * 10 + 10]
    assert [row.params for row in model.rows] == expected
    assert sum(row.params for row in model.rows) == trainable + non_trainable
    assert check_forward(model, (1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("size,stride,kernel", [(28, 2, 3), (27, 2, 3), (8, 2, 5), (9, 3, 2), (7, 1, 4)])
def test_same_padding_with_strides_gives_ceil(size, stride, kernel):
    model = build([{"Conv2D": {"filters": 8, "kernel_size": kernel, "strides": stride, "padding": "same"}}],
                  (3, size, size))
    expected = -(-size // stride)
    assert model.rows[0].output_shape == [expected, expected, 8]
    assert check_forward(model, (3, size, size)).shape == (2, 8, expected, expected)
    assert model.rows[0].params == conv_params(kernel, 3, 8)


@pytest.mark.parametrize("size,kernel,stride,dilation", [(10, 3, 1, 1), (11, 3, 2, 1), (12, 3, 1, 2), (9, 4, 3, 1)])
def test_valid_padding_shapes(size, kernel, stride, dilation):
    model = build([{"Conv2D": {"filters": 4, "kernel_size": kernel, "strides": stride, "dilation_rate": dilation}}],
                  (1, size, size))
    expected = (size - dilation * (kernel - 1) - 1) // stride + 1
    assert model.rows[0].output_shape == [expected, expected, 4]
    assert check_forward(model, (1, size, size)).shape[-1] == expected


def test_depthwise_with_depth_multiplier_two():
    model = build([{"DepthwiseConv2D": {"kernel_size": 3, "depth_multiplier": 2}}], (5, 10, 10))
    assert model.rows[0].params == 3 * 3 * 5 * 2 + 5 * 2
    assert model.rows[0].output_shape == [8, 8, 10]
    assert check_forward(model, (5, 10, 10)).shape == (2, 10, 8, 8)


def test_separable_with_depth_multiplier_and_no_bias():
    model = build([{"SeparableConv2D": {"filters": 7, "kernel_size": 3, "depth_multiplier": 3, "use_bias": False}}],
                  (4, 6, 6))
    assert model.rows[0].params == 3 * 3 * 4 * 3 + 4 * 3 * 7


def test_residual_with_projection_and_shortcut_bn():
    block = {"Residual": {"shortcut_bn": True, "layers": [
        {"Conv2D": {"filters": 16, "kernel_size": 3, "strides": 2, "padding": "same"}},
        {"BatchNormalization": {}},
        {"Conv2D": {"filters": 16, "kernel_size": 3, "padding": "same"}}]}}
    model = build([block], (8, 32, 32))
    residual_row, *rows = model.rows
    assert residual_row.type == "Residual" and residual_row.output_shape == [16, 16, 16]
    assert residual_row.params == 0  # its layers follow as rows of their own
    assert [(r.type, r.role) for r in rows] == [("Conv2D", ""), ("BatchNormalization", ""), ("Conv2D", ""),
                                                ("Conv2D", "shortcut"), ("BatchNormalization", "shortcut"), ("Add", "")]
    # body, then the 1×1 projection with bias and its BN (gamma, beta, moving mean and variance), then the addition
    assert [r.params for r in rows] == [conv_params(3, 8, 16), 64, conv_params(3, 16, 16), 8 * 16 + 16, 64, 0]
    assert rows[4].non_trainable == 2 * 16
    assert sum(r.params for r in model.rows) == sum(count_params(model))
    assert check_forward(model, (8, 32, 32)).shape == (2, 16, 16, 16)


def test_residual_identity_shortcut_has_no_parameters():
    model = build([{"Residual": {"layers": [{"Conv2D": {"filters": 3, "kernel_size": 3, "padding": "same"}}]}}],
                  (3, 8, 8))
    assert [(r.type, r.params) for r in model.rows] == [("Residual", 0), ("Conv2D", conv_params(3, 3, 3)), ("Add", 0)]
    x = torch.randn(2, 3, 8, 8)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), model.layers[0].body(x) + x)


def test_repeat_expands_and_zero_times_removes():
    block = {"Repeat": {"times": "${depth}", "layers": [{"Conv2D": {"filters": 4, "kernel_size": 3, "padding": "same"}}]}}
    assert len(build([block, "Flatten"], (4, 5, 5), depth=3).rows) == 4
    assert len(build([block, "Flatten"], (4, 5, 5), depth=0).rows) == 1


def test_pooling_and_global_layers():
    model = build([{"MaxPooling2D": {"pool_size": 3, "strides": 2, "padding": "same"}},
                   {"AveragePooling2D": {"pool_size": 2, "padding": "same"}}, "GlobalMaxPooling2D"], (2, 9, 9))
    assert [r.output_shape for r in model.rows] == [[5, 5, 2], [3, 3, 2], [2]]
    assert check_forward(model, (2, 9, 9)).shape == (2, 2)


def test_average_pool_same_excludes_padding_like_keras():
    model = build([{"AveragePooling2D": {"pool_size": 2, "padding": "same"}}], (1, 3, 3))
    out = model(torch.ones(1, 1, 3, 3))
    assert torch.allclose(out, torch.ones_like(out))  # padded zeros must not pull the mean down


def test_dense_flatten_dropout_spatial_dropout_activation():
    layers = [{"SpatialDropout2D": 0.2}, "Flatten", {"Dense": [32, "gelu"]}, {"Dropout": {"rate": 0.5}},
              {"Activation": "tanh"}, {"Dense": {"units": "classes", "activation": "softmax"}}]
    model = build(layers, (3, 4, 4), classes=5)
    assert [r.params for r in model.rows] == [0, 0, 48 * 32 + 32, 0, 0, 32 * 5 + 5]
    logits = check_forward(model, (3, 4, 4))
    assert not torch.allclose(logits.sum(1), torch.ones(2))  # the final softmax is dropped: the model emits logits


@pytest.mark.parametrize("name", ["relu", "gelu", "silu", "swish", "elu", "selu", "tanh", "sigmoid", "leaky_relu",
                                  "softmax", "linear"])
def test_every_activation_builds_and_runs(name):
    model = build([{"Conv2D": {"filters": 2, "kernel_size": 1, "activation": name}}, "Flatten"], (1, 3, 3))
    assert torch.isfinite(check_forward(model, (1, 3, 3))).all()


def test_batchnorm_uses_keras_momentum_and_epsilon():
    model = build([{"BatchNormalization": {"momentum": 0.9, "epsilon": 0.01}}], (3, 4, 4))
    norm = model.layers[0]
    assert norm.momentum == pytest.approx(0.1) and norm.eps == pytest.approx(0.01)
    default = build([{"BatchNormalization": {}}], (3, 4, 4)).layers[0]
    assert default.momentum == pytest.approx(0.01) and default.eps == pytest.approx(1e-3)


def test_absurd_model_is_refused_before_allocating():
    import resource

    from dlx.core.errors import DlxError
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DlxError, match="2,148,... parameters|parameters, more than"):
        build([{"Conv2D": [32768, 3]}, {"SeparableConv2D": [65536, 3]}, "Flatten"], (3, 32, 32))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500  # laid out on the meta device: the 8 GB of weights were never allocated
