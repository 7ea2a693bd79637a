"""`dlx evaluate`: reload a run's best checkpoint and score it on a split it was never selected on."""
from __future__ import annotations

from pathlib import Path

import torch

from dlx.archs.builder import build_model
from dlx.archs.check import validate_spec
from dlx.core.errors import DlxError
from dlx.train.checkpoint import load_checkpoint
from dlx.train.data import load_splits
from dlx.train.data.access import open_split
from dlx.train.device import pick_device
from dlx.train.inputs import InputContract, check_dataset, pin_channels
from dlx.train.loop import predict_logits
from dlx.train.metrics import confusion_counts
from dlx.train.rundir import RunFolder

SPLITS = ("val", "test")  # the held-out splits a run (or ensemble) can be scored on


def load_run_model(run_dir: str | Path, device="cpu"):
    """(model, spec, checkpoint) from a run folder's best.pt, loaded without executing code."""
    path = RunFolder(run_dir).best
    checkpoint = load_checkpoint(path, device)
    record = checkpoint["data"]
    spec = pin_channels(validate_spec(checkpoint["spec"], file=path), record)
    model = build_model(spec.model, tuple(record["input_shape"]), len(record["class_names"]))
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as exc:
        raise DlxError(f"the weights don't fit the model its spec describes ({str(exc).splitlines()[0]}).",
                       file=path) from None
    return model.to(device).eval(), spec, checkpoint


def evaluate_run(run_dir: str | Path, split: str = "test") -> dict:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted) of the best checkpoint on
    `split`, re-read from the run's dataset and held to the input contract recorded in the checkpoint."""
    if split not in SPLITS:
        raise DlxError(f"unknown split '{split}'; expected one of: {', '.join(SPLITS)}.", key="--split")
    model, spec, checkpoint = load_run_model(run_dir)
    plan = pick_device(spec.device)
    model = plan.place(model)
    splits = load_splits(spec.data)
    contract = InputContract.from_record(checkpoint["data"])
    check_dataset(splits.x[split], contract, spec.data.path)
    data = open_split(splits, split, plan.device)
    logits = predict_logits(model, data, plan)
    loss = torch.nn.functional.cross_entropy(logits, data.y).item()
    predicted = logits.argmax(1)
    classes = logits.shape[1]
    confusion = confusion_counts(data.y.cpu().numpy(), predicted.cpu().numpy(), classes)
    return {"run": str(run_dir), "split": split, "samples": len(data), "loss": loss,
            "accuracy": (predicted == data.y).float().mean().item(), "confusion_matrix": confusion.tolist(),
            "class_names": list(checkpoint["data"]["class_names"]), "input_contract": contract.as_dict()}
