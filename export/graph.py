"""One torch module from decoded image pixels to class probabilities: the run's preprocessing (0–255 → the units
training saw → × scale → mean/std), each member's network and temperature, and the ensemble's pooling, so that an
exporter traces it all into one graph."""
from __future__ import annotations

import math

import numpy as np
import torch

from dlx.core.errors import DlxError
from dlx.train import InputContract

EPS = 1e-12  # as ensemble pooling floors probabilities before a log
STACK_FLOOR = math.log(1e-3)  # as ensemble stacking floors member log-probabilities


def byte_factor(contract: InputContract, file=None) -> float:
    """Pixel value 0–255 × this = the raw value training saw (uint8 images: 1; 0–1 images: 1/255)."""
    if len(contract.shape) != 3:
        raise DlxError(f"only image models can be exported (inputs N×H×W×C); this model takes "
                       f"{contract.describe()}.", file=file)
    if contract.accepted is None:  # an older checkpoint: uint8 ÷ 255 ÷ scale, as dlx always did
        return 1 / 255 / contract.scale
    if contract.accepted[0] == 0.0 and contract.accepted[1] in (1.0, 255.0):
        return 1.0 if contract.accepted[1] == 255.0 else 1 / 255
    raise DlxError(f"the model was trained on {contract.describe()}, not on image pixels; exported models take "
                   "0–255 pixels, so it can't be exported.", file=file)


class Preprocess(torch.nn.Module):
    """N×H×W×C pixels in 0–255 → N×C×H×W as the member's first layer takes them:
    (x × factor × scale − mean) / std."""

    def __init__(self, record: dict, factor: float):
        super().__init__()
        std = torch.as_tensor(record["std"], dtype=torch.float32).view(1, -1, 1, 1)
        mean = torch.as_tensor(record["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("gain", factor * float(record["scale"]) / std)
        self.register_buffer("offset", -mean / std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.permute(0, 3, 1, 2) * self.gain + self.offset


class ExportGraph(torch.nn.Module):
    """Members' log-probabilities (each with its own preprocessing and temperature), pooled by weights or by a
    stacking combiner, then the output temperature: what `EnsembleModel.predict` computes, in torch."""

    def __init__(self, networks: list, records: list[dict], factors: list[float], temperatures: list[float],
                 weights=None, combiner=None, output_temperature: float = 1.0):
        super().__init__()
        self.networks = torch.nn.ModuleList(networks)
        self.preprocess = torch.nn.ModuleList(Preprocess(r, f) for r, f in zip(records, factors))
        self.temperatures = [float(t) for t in temperatures]
        self.output_temperature = float(output_temperature)
        self.stacking = combiner is not None
        if self.stacking:
            self.register_buffer("coef", torch.as_tensor(np.asarray(combiner["coef"]), dtype=torch.float32))
            self.register_buffer("intercept", torch.as_tensor(np.asarray(combiner["intercept"]), dtype=torch.float32))
        else:
            weights = np.asarray(weights, np.float64)
            self.register_buffer("weights", torch.as_tensor(weights / weights.sum(), dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        log_probs = [torch.log_softmax(torch.log_softmax(net(pre(images)).float(), dim=1) / t, dim=1)
                     for net, pre, t in zip(self.networks, self.preprocess, self.temperatures)]
        if self.stacking:
            features = torch.cat([torch.clamp(lp, min=STACK_FLOOR) for lp in log_probs], dim=1)
            probs = torch.softmax(features @ self.coef.T + self.intercept, dim=1)
        else:
            probs = sum(self.weights[i] * torch.exp(lp) for i, lp in enumerate(log_probs))
        if self.output_temperature != 1.0:
            probs = torch.softmax(torch.log(torch.clamp(probs, min=EPS)) / self.output_temperature, dim=1)
        return probs
