"""Helpers of the archs tests."""
from __future__ import annotations

import torch


@torch.no_grad()
def check_forward(model: torch.nn.Module, input_shape: tuple) -> torch.Tensor:
    """The model's output for a random batch of two (in eval mode)."""
    model.eval()
    return model(torch.randn(2, *input_shape))
