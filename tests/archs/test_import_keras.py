"""`archs.keras_import` against real Keras 3 (torch backend): Keras models saved as .keras files or as
`model.to_json()` become dlx specs whose counts and output shapes equal Keras's, the four Keras-applications
models included; what dlx can't reproduce is named, with its position, in one error."""
from __future__ import annotations

import os
from collections import Counter

import pytest
import torch
import yaml

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from dlx.archs import build_model, count_params, import_keras, spec_yaml
from dlx.core.errors import DlxError
from dlx.experiment.schema import ModelSpec
from tests.archs.test_keras_apps import WEIGHTED, keras_counts

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
layers = keras.layers


def round_trip(model, tmp_path, as_json=False):
    """The Keras model saved, imported, written as a spec and read back: (dlx model, imported result)."""
    if as_json:
        path = tmp_path / "model.json"
        path.write_text(model.to_json())
    else:
        path = tmp_path / "model.keras"
        model.save(path)
    result = import_keras(path)
    spec = yaml.safe_load(spec_yaml(result, path.name))
    height_width_channels = result.input_shape
    shape = (height_width_channels[-1], *height_width_channels[:-1]) if len(height_width_channels) == 3 \
        else tuple(height_width_channels)
    return build_model(ModelSpec(**spec["model"]), shape, result.outputs), result


def assert_same_as_keras(ours, theirs):
    assert count_params(ours) == keras_counts(theirs)
    expected = Counter((layer.__class__.__name__, tuple(layer.output.shape[1:]), layer.count_params())
                       for layer in theirs.layers if layer.__class__.__name__ in WEIGHTED)
    assert Counter((row.type, tuple(row.output_shape), row.params) for row in ours.rows
                   if row.type in WEIGHTED) == expected
    assert ours.rows[-1].output_shape == list(theirs.layers[-1].output.shape[1:])


@pytest.mark.xdist_group("heavy")
@pytest.mark.parametrize("application,size,classes", [
    ("ResNet50", 32, 10), ("MobileNetV2", 35, 4), ("DenseNet121", 33, 3), ("Xception", 71, 5)])
def test_keras_applications_round_trip(application, size, classes, tmp_path):
    theirs = getattr(keras.applications, application)(weights=None, input_shape=(size, size, 3), classes=classes)
    ours, result = round_trip(theirs, tmp_path)
    assert result.outputs == classes
    assert_same_as_keras(ours, theirs)
    with torch.no_grad():
        assert ours.eval()(torch.randn(2, 3, size, size)).shape == (2, classes)


def test_mobilenet_with_alpha_from_json(tmp_path):
    theirs = keras.applications.MobileNetV2(weights=None, input_shape=(40, 48, 3), classes=6, alpha=0.35)
    ours, _ = round_trip(theirs, tmp_path, as_json=True)
    assert_same_as_keras(ours, theirs)


def test_sequential_with_the_new_layers(tmp_path):
    theirs = keras.Sequential([
        keras.Input((12, 10, 2)), layers.ZeroPadding2D(((1, 0), (2, 1))), layers.Conv2D(6, 3, activation="relu"),
        layers.ReLU(max_value=6.0), layers.Conv2DTranspose(4, 3, strides=2, padding="same"),
        layers.Cropping2D(1), layers.UpSampling2D(2), layers.LayerNormalization(),
        layers.GlobalMaxPooling2D(keepdims=True), layers.Reshape((4,)), layers.Dropout(0.2),
        layers.Dense(8, activation="tanh"), layers.Dense(3, activation="softmax")])
    path = tmp_path / "seq.keras"
    theirs.save(path)
    result = import_keras(path)
    assert result.layers[:3] == [{"ZeroPadding2D": {"padding": [[1, 0], [2, 1]]}},
                                 {"Conv2D": {"filters": 6, "kernel_size": 3, "activation": "relu"}},
                                 {"ReLU": 6.0}]  # positional, as `ReLU: 6.0`
    assert result.layers[-1] == {"Dense": {"units": "classes"}} and result.outputs == 3
    ours, _ = round_trip(theirs, tmp_path)
    assert_same_as_keras(ours, theirs)


def test_functional_branches_get_names_and_inputs(tmp_path):
    inputs = keras.Input((8, 8, 3))
    left = layers.Conv2D(4, 3, padding="same", name="left")(inputs)
    right = layers.Conv2D(4, 1, name="right")(inputs)
    joined = layers.Concatenate(name="joined")([left, right])
    added = layers.Add()([layers.Conv2D(8, 1)(joined), joined])
    outputs = layers.Dense(2)(layers.GlobalAveragePooling2D()(added))
    theirs = keras.Model(inputs, outputs)
    ours, result = round_trip(theirs, tmp_path)
    assert result.layers[:3] == [{"Conv2D": {"filters": 4, "kernel_size": 3, "padding": "same", "name": "left"}},
                                 {"Conv2D": {"filters": 4, "kernel_size": 1, "name": "right", "inputs": "input"}},
                                 {"Concatenate": {"name": "joined", "inputs": ["left", "right"]}}]
    assert_same_as_keras(ours, theirs)


def test_unsupported_layers_are_named_with_their_positions_in_one_error(tmp_path):
    theirs = keras.Sequential([keras.Input((8, 8, 3)), layers.Rescaling(1 / 255, name="scale"),
                               layers.Conv2D(4, 3), layers.GaussianNoise(0.1, name="noise"),
                               layers.Conv2D(4, 3, groups=2), layers.Flatten()])
    path = tmp_path / "m.keras"
    theirs.save(path)
    with pytest.raises(DlxError) as error:
        import_keras(path)
    message = str(error.value)
    assert "3 layer(s) have no dlx equivalent" in message
    assert "layer 1 'scale' (Rescaling): dlx has no such layer" in message
    assert "layer 3 'noise' (GaussianNoise): dlx has no such layer" in message
    assert "(Conv2D): groups=2 (dlx supports 1)" in message
    assert str(path) in message


@pytest.mark.parametrize("content,fragment", [
    ("not json", "not a Keras model"), ('{"class_name": "Dense"}', "expected a Keras Sequential or Functional"),
    ('{"class_name": "Sequential", "config": {"layers": []}}', "the model config lists no layers"),
    (('{"class_name": "Functional", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": '
      '[null, 4]}}, {"class_name": "Dense", "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__"}]}]}]}}'),
     "expected a JSON object here, got null")])
def test_files_that_are_not_keras_models_are_refused(content, fragment, tmp_path):
    path = tmp_path / "model.json"
    path.write_text(content)
    with pytest.raises(DlxError, match=fragment):
        import_keras(path)


def test_two_outputs_are_refused(tmp_path):
    inputs = keras.Input((4,))
    theirs = keras.Model(inputs, [layers.Dense(2)(inputs), layers.Dense(3)(inputs)])
    path = tmp_path / "two.keras"
    theirs.save(path)
    with pytest.raises(DlxError, match="the model has 2 outputs; dlx models have one input and one output"):
        import_keras(path)
