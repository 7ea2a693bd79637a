"""Issue 34, item 8: the activation-memory check sized only the training batch, so scoring a split at 1,024 samples
a batch could ask for many times the memory training was allowed. Evaluation batches are lowered to what fits."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import dlx.train.memory as memory
from dlx.archs.builder import build_model
from dlx.archs.check import load_spec
from dlx.train.data import Splits
from dlx.train.data.tensors import TensorData
from dlx.train.device import pick_device
from dlx.train.loop import evaluate, predict_logits

WIDE = "model: {layers: [{Conv2D: {filters: 512, kernel_size: 1}}, GlobalAveragePooling2D, {Dense: {units: classes}}]}"
SAMPLES = 300


@pytest.fixture
def scored(tmp_path):
    """(model, data, plan, batch sizes seen by the model's forward) for 300 samples of 8×8 on the CPU."""
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: m\ndata: {{dataset: digits}}\n{WIDE}\ndevice: {{type: cpu, threads: 1}}\n")
    spec = load_spec(path)
    model = build_model(spec.model, (1, 8, 8), 3)
    seen = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append(len(inputs[0])))
    rng = np.random.default_rng(0)
    splits = Splits({"val": rng.random((SAMPLES, 1, 8, 8), np.float32)}, {"val": np.arange(SAMPLES) % 3},
                    ["a", "b", "c"], 1.0, np.zeros(1, np.float32), np.ones(1, np.float32))
    plan = pick_device(spec.device)
    return model, TensorData(splits, "val", plan.device), plan, seen


def test_an_evaluation_batch_is_lowered_to_fit_the_memory(scored, monkeypatch):
    model, data, plan, seen = scored
    per_sample = memory.activation_bytes(model, 1) // memory.BACKWARD_FACTOR
    budget = 40 * per_sample  # memory for the layer outputs of 40 samples, of 300 to score
    monkeypatch.setattr(memory, "device_memory", lambda device: int(budget / memory.MEMORY_FRACTION))
    loss, accuracy = evaluate(model, data, plan)
    assert max(seen) * per_sample <= budget and max(seen) == 40
    assert sum(seen) == SAMPLES  # every sample scored once
    seen.clear()
    whole_loss, whole_accuracy = evaluate(model, data, plan, batch_size=SAMPLES)
    assert seen == [SAMPLES]
    assert loss == pytest.approx(whole_loss, rel=1e-5) and accuracy == whole_accuracy


def test_predictions_use_full_batches_where_memory_allows(scored):
    model, data, plan, seen = scored
    logits = predict_logits(model, data, plan)
    assert seen == [SAMPLES] and logits.shape == (SAMPLES, 3)


def test_a_wrapped_model_is_sized_by_the_model_inside(scored, monkeypatch):
    model, _, plan, _ = scored
    per_sample = memory.activation_bytes(model, 1) // memory.BACKWARD_FACTOR
    monkeypatch.setattr(memory, "device_memory", lambda device: int(25 * per_sample / memory.MEMORY_FRACTION))
    wrapper = torch.nn.Module()
    wrapper.module = model  # as DistributedDataParallel holds it
    assert memory.evaluation_batch(wrapper, plan.device) == memory.evaluation_batch(model, plan.device) == 25
