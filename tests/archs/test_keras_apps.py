"""The Keras-applications presets against `keras.applications` itself (Keras 3, torch backend, weights=None):
trainable and non-trainable counts equal Keras's exactly, at Keras's default sizes and at other input sizes,
class counts and MobileNetV2 widths, and every weighted layer has Keras's output shape and parameter count."""
from __future__ import annotations

import os
from collections import Counter

import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from dlx.archs import build_model, count_params
from dlx.experiment.schema import ModelSpec

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

APPLICATIONS = {"resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2", "densenet121": "DenseNet121",
                "xception": "Xception"}
WEIGHTED = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "BatchNormalization", "Dense"}
MERGES = {"Add", "Concatenate"}  # where the shortcuts and concatenations are: MobileNetV2's depend on alpha

# (preset, height, width, classes, vars): non-square and odd sizes check Keras's padding arithmetic
CASES = [("resnet50", 32, 32, 10, {}), ("resnet50", 75, 50, 7, {}),
         ("mobilenet_v2", 32, 32, 10, {}), ("mobilenet_v2", 47, 61, 3, {"alpha": 0.35}),
         ("mobilenet_v2", 33, 40, 5, {"alpha": 1.3}), ("mobilenet_v2", 32, 35, 2, {"alpha": 0.1}),
         ("densenet121", 32, 32, 10, {}), ("densenet121", 65, 40, 4, {}),
         ("xception", 71, 71, 10, {}), ("xception", 80, 95, 6, {})]


def keras_application(preset, height, width, classes, variables):
    build = getattr(keras.applications, APPLICATIONS[preset])
    return build(weights=None, input_shape=(height, width, 3), classes=classes, **variables)


def keras_counts(model) -> tuple[int, int]:
    def size(weights):
        return sum(int(torch.tensor(w.shape).prod()) for w in weights)
    return size(model.trainable_weights), size(model.non_trainable_weights)


def dlx_preset(preset, height, width, classes, variables, device="cpu"):
    with torch.device(device):
        return build_model(ModelSpec(preset=preset, vars=variables), (3, height, width), classes)


def weighted_layers(rows):
    """(type, output shape, parameters) of every layer with weights, as a multiset: the order of a block's
    branches may differ between a Keras functional model and a spec."""
    return Counter((row.type, tuple(row.output_shape), row.params) for row in rows if row.type in WEIGHTED)


@pytest.mark.xdist_group("heavy")
@pytest.mark.parametrize("preset,height,width,classes,variables", CASES,
                         ids=[f"{c[0]}-{c[1]}x{c[2]}-{c[3]}-{c[4]}" for c in CASES])
def test_preset_equals_keras_application(preset, height, width, classes, variables):
    theirs = keras_application(preset, height, width, classes, variables)
    ours = dlx_preset(preset, height, width, classes, variables)
    assert count_params(ours) == keras_counts(theirs)
    expected = Counter((layer.__class__.__name__, tuple(layer.output.shape[1:]), layer.count_params())
                       for layer in theirs.layers if layer.__class__.__name__ in WEIGHTED)
    assert weighted_layers(ours.rows) == expected
    merges = Counter(layer.__class__.__name__ for layer in theirs.layers if layer.__class__.__name__ in MERGES)
    assert Counter(row.type for row in ours.rows if row.type in MERGES) == merges
    images = torch.randn(2, 3, height, width)
    with torch.no_grad():
        assert ours.eval()(images).shape == (2, classes)


@pytest.mark.parametrize("preset,size,counts", [
    ("xception", 299, (22_855_952, 54_528)), ("resnet50", 224, (25_583_592, 53_120)),
    ("mobilenet_v2", 224, (3_504_872, 34_112)), ("densenet121", 224, (7_978_856, 83_648))])
def test_default_size_counts_are_keras_published_ones(preset, size, counts):
    """Keras's counts at its default sizes and 1,000 classes (from the Keras documentation and `summary()`),
    laid out on the meta device: no memory, no Keras model to build."""
    assert count_params(dlx_preset(preset, size, size, 1000, {}, device="meta")) == counts
