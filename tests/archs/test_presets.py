"""Every registered preset and layer type builds and runs a forward pass without NaNs."""
from __future__ import annotations

import pytest
import torch

from dlx.archs import LAYERS, PRESETS, build_model
from dlx.experiment.schema import ModelSpec
from tests.archs.conftest import check_forward


MIN_SIDE = {"densenet121": 32}  # Keras's own minimum input size for DenseNet121


@pytest.mark.parametrize("name", PRESETS.names())
@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 32, 32)])
def test_preset_builds_and_runs(name, input_shape):
    side = MIN_SIDE.get(name, 1)  # below it, the preset's pooling would shrink the image to nothing (as in Keras)
    input_shape = (input_shape[0], max(side, input_shape[1]), max(side, input_shape[2]))
    model = build_model(ModelSpec(preset=name), input_shape, 10)
    assert torch.isfinite(check_forward(model, input_shape)).all()


def test_preset_vars_can_be_overridden():
    small = build_model(ModelSpec(preset="plain_cnn", vars={"width": 8}), (1, 8, 8), 10)
    large = build_model(ModelSpec(preset="plain_cnn", vars={"width": 64}), (1, 8, 8), 10)
    assert small.rows[0].output_shape[-1] == 8 and large.rows[0].output_shape[-1] == 64


EXAMPLES = {"Conv2D": [4, 3], "SeparableConv2D": [4, 3], "DepthwiseConv2D": [3], "BatchNormalization": {},
            "Activation": "relu", "Dropout": 0.1, "SpatialDropout2D": 0.1, "MaxPooling2D": 2, "AveragePooling2D": 2,
            "GlobalAveragePooling2D": None, "GlobalMaxPooling2D": None, "Flatten": None, "Dense": [3],
            "Residual": {"layers": [{"Conv2D": [2, 1]}]}, "Repeat": {"times": 2, "layers": ["BatchNormalization"]}}


EXAMPLES["Identity"] = None
EXAMPLES.update({"ZeroPadding2D": 1, "Cropping2D": 1, "UpSampling2D": 2, "ReLU": {"max_value": 6},  # keras_layers
                 "Reshape": [[6, 6, 2]], "Conv2DTranspose": [2, 3], "LayerNormalization": {}})
MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]  # take `inputs: [a, b]`


def test_examples_cover_the_registry():
    assert set(EXAMPLES) | set(MERGES) == set(LAYERS)


@pytest.mark.parametrize("name", MERGES)
def test_every_merge_layer_builds(name):
    layers = [{"Conv2D": {"filters": 2, "kernel_size": 1, "name": "a"}},
              {"Conv2D": {"filters": 2, "kernel_size": 1}, "name": "b", "inputs": "input"},
              {name: {"inputs": ["a", "b"]}}, "Flatten"]
    model = build_model(ModelSpec(layers=layers), (2, 6, 6), None)
    assert torch.isfinite(check_forward(model, (2, 6, 6))).all()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_layer_type_builds(name):
    item = {name: EXAMPLES[name]}
    layers = ["Flatten", item] if name == "Dense" else [item, "Flatten"]  # Dense wants flat features
    model = build_model(ModelSpec(layers=layers), (2, 6, 6), None)
    assert torch.isfinite(check_forward(model, (2, 6, 6))).all()
