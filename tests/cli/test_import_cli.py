"""`dlx import keras` through the real CLI: a Keras model file becomes a spec whose `dlx summary` counts equal
Keras's, which `dlx train` trains on digits; bad models are one user error."""
from __future__ import annotations

import json
import os

import pytest
import yaml

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from tests.conftest import assert_user_error, run_dlx

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
layers = keras.layers


def small_resnet(shape=(8, 8, 1), classes=10):
    """A Keras functional model with a projection shortcut and a concatenation, sized for digits."""
    inputs = keras.Input(shape)
    x = layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    stem = layers.ReLU(max_value=6.0)(x)
    body = layers.SeparableConv2D(16, 3, strides=2, padding="same")(stem)
    shortcut = layers.Conv2D(16, 1, strides=2)(stem)
    x = layers.Add()([body, shortcut])
    x = layers.Concatenate()([x, layers.DepthwiseConv2D(3, padding="same")(x)])
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(classes, activation="softmax")(x))


def keras_counts(model):
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    return trainable, sum(int(keras.ops.size(w)) for w in model.non_trainable_weights)


@pytest.mark.xdist_group("heavy")
def test_imported_spec_summarises_as_keras_and_trains(tmp_path):
    model = small_resnet()
    model.save(tmp_path / "small.keras")
    result = run_dlx("import", "keras", tmp_path / "small.keras", "--out", tmp_path / "spec.yaml", check=0)
    assert "spec.yaml: 10 layers" in result.stdout and "--input-shape 8,8,1 --classes 10" in result.stdout
    summary = json.loads(run_dlx("summary", tmp_path / "spec.yaml", "--input-shape", "8,8,1", "--classes", "10",
                                 "--json", check=0).stdout)
    assert (summary["trainable_params"], summary["non_trainable_params"]) == keras_counts(model)
    assert summary["layers"][-1]["output_shape"] == [10]
    run_dlx("train", tmp_path / "spec.yaml", "--out", tmp_path / "run", "--quiet", "--set", "train.epochs=1",
            check=0)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "finished"


def test_without_out_the_spec_is_printed(tmp_path):
    (tmp_path / "model.json").write_text(keras.Sequential([
        keras.Input((6, 6, 3)), layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(2)]).to_json())
    result = run_dlx("import", "keras", tmp_path / "model.json", check=0)
    spec = yaml.safe_load(result.stdout)
    assert spec["model"]["layers"] == [{"Conv2D": {"filters": 4, "kernel_size": 3}}, "Flatten",
                                       {"Dense": {"units": "classes"}}]
    assert "dlx summary THIS.yaml --input-shape 6,6,3 --classes 2" in result.stdout


def test_unsupported_layer_is_one_error_with_its_position(tmp_path):
    keras.Sequential([keras.Input((6, 6, 3)), layers.Conv2D(4, 3), layers.Rescaling(0.5, name="halve"), layers.Flatten()]).save(
        tmp_path / "m.keras")
    result = run_dlx("import", "keras", tmp_path / "m.keras", "--out", tmp_path / "spec.yaml")
    assert_user_error(result, "1 layer(s) have no dlx equivalent", "layer 2 'halve' (Rescaling)", "m.keras")
    assert not (tmp_path / "spec.yaml").exists()


def test_a_file_that_is_not_a_model_is_one_error(tmp_path):
    (tmp_path / "weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    assert_user_error(run_dlx("import", "keras", tmp_path / "weights.h5"), "not a Keras model", "weights.h5")
    assert_user_error(run_dlx("import", "keras", tmp_path / "missing.keras"), "no such file")
