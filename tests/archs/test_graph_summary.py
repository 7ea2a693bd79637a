"""Summaries of graphs and presets: the FLOPs each row reports (from weights and inferred shapes, no forward pass)
equal what tracing a real forward pass counts, and a ResNet50 summary allocates no weights."""
from __future__ import annotations

import resource

import pytest
import torch
from torch import nn

from dlx.archs import build_model, summarize
from dlx.experiment.schema import ExperimentSpec, ModelSpec
from tests.archs.test_graph import GRAPHS


def traced_flops(model: nn.Module, input_shape: tuple) -> int:
    """The oracle: multiply-adds ×2 of every Conv2d and Linear, with output sizes seen in a real forward pass."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += 2 * module.weight[0].numel() * output[0].numel()
        else:
            total += 2 * module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *input_shape))
    for hook in hooks:
        hook.remove()
    return total


CASES = {  # name: (ModelSpec arguments, channels-first input shape)
    "inception": ({"layers": GRAPHS["inception"][1]}, (2, 9, 9)),
    "squeeze_excite": ({"layers": GRAPHS["squeeze_excite"][1]}, (4, 6, 6)),
    "resnet_small": ({"preset": "resnet_small"}, (3, 17, 17)),
    "mini_xception": ({"preset": "mini_xception"}, (1, 28, 28)),
    "mobilenet_v2": ({"preset": "mobilenet_v2", "vars": {"alpha": 0.35}}, (3, 40, 40)),
    "densenet121": ({"preset": "densenet121"}, (3, 32, 32)),
}


@pytest.mark.parametrize("name", CASES)
def test_row_flops_add_up_to_a_traced_forward_pass(name):
    arguments, shape = CASES[name]
    model = build_model(ModelSpec(**arguments), shape, None if "layers" in arguments else 10)
    assert sum(row.flops for row in model.rows) == traced_flops(model, shape)


def test_resnet50_summary_allocates_no_weights():
    spec = ExperimentSpec(model={"preset": "resnet50"})
    summarize(spec, (3, 32, 32), 10)  # imports and first-use caches out of the way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    summary = summarize(spec, (3, 224, 224), 1000)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert summary["trainable_params"] == 25_583_592 and summary["non_trainable_params"] == 53_120
    assert grown_mb < 50  # its 25.6 million float32 weights alone would take 100 MB
    assert summary["mflops"] == pytest.approx(sum(row["flops"] for row in summary["layers"]) / 1e6)
