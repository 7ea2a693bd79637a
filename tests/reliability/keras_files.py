"""Keras 3 model configs as `model.to_json()` and `.keras` files write them (the keys `dlx import keras` reads),
built by hand so that a test can damage any part of them without importing Keras."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

METADATA = {"keras_version": "3.8.0", "date_saved": "2026-12-07@12:00:00"}


def keras_layer(kind: str, name: str, **config) -> dict:
    return {"module": "keras.layers", "class_name": kind, "config": {"name": name, "trainable": True, **config},
            "registered_name": None}


def input_layer(shape=(6, 6, 3)) -> dict:
    return keras_layer("InputLayer", "input_layer", batch_shape=[None, *shape], dtype="float32")


def sequential(*layers: dict, shape=(6, 6, 3)) -> dict:
    """A Sequential model: the input layer, then `layers`."""
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": "sequential", "trainable": True, "layers": [input_layer(shape), *layers]}}


def small_cnn() -> dict:
    """6×6×3 → Conv2D → Flatten → Dense(2): the model of tests/cli/test_import_cli.py."""
    return sequential(keras_layer("Conv2D", "conv2d", filters=4, kernel_size=[3, 3], strides=[1, 1],
                                  padding="valid", data_format="channels_last", activation="linear",
                                  use_bias=True, kernel_initializer={"class_name": "GlorotUniform"}),
                      keras_layer("Flatten", "flatten", data_format="channels_last"),
                      keras_layer("Dense", "dense", units=2, activation="softmax", use_bias=True))


def tensor(name: str) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "dtype": "float32",
                                                         "keras_history": [name, 0, 0]}}


def called(kind: str, name: str, sources: list[str], **config) -> dict:
    """A functional model's layer applied to the outputs of the layers named `sources`."""
    args = [tensor(s) for s in sources]
    return {**keras_layer(kind, name, **config), "name": name,
            "inbound_nodes": [{"args": args if len(args) == 1 else [args], "kwargs": {}}]}


def functional(*layers: dict, output: str, shape=(4,)) -> dict:
    return {"module": "keras", "class_name": "Functional",
            "config": {"name": "functional", "trainable": True, "layers": [input_layer(shape), *layers],
                       "input_layers": [["input_layer", 0, 0]], "output_layers": [[output, 0, 0]]}}


def write_keras(path: Path, config: dict | bytes | str) -> Path:
    """A `.keras` zip holding `config` as its config.json (bytes and text as they are), beside a metadata.json."""
    data = config if isinstance(config, (bytes, str)) else json.dumps(config)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps(METADATA))
        archive.writestr("config.json", data)
    return path
