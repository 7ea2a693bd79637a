"""Model summary as data (the CLI formats it): rows, totals, an estimate of FLOPs per image."""
from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from archs.builder import build_model, count_params, keras_shape


def estimate_flops(model: nn.Module, input_shape: tuple) -> int:
    """Multiply-adds ×2 of convolutions and dense layers for one image, by tracing one forward pass."""
    total = 0

    def conv_hook(module, inputs, output):
        nonlocal total
        kernel = module.weight[0].numel()  # in_channels/groups × kh × kw
        total += 2 * kernel * output[0].numel()

    def linear_hook(module, inputs, output):
        nonlocal total
        total += 2 * module.in_features * module.out_features

    hooks = [m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def summarize(spec) -> dict:
    from train.data import dataset_info
    info = dataset_info(spec.data)
    model = build_model(spec.model, info.input_shape, info.classes)
    trainable, non_trainable = count_params(model)
    return {
        "name": spec.name,
        "input_shape": keras_shape(info.input_shape),
        "classes": info.classes,
        "layers": [asdict(row) for row in model.rows],
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "mflops": estimate_flops(model, info.input_shape) / 1e6,
    }
