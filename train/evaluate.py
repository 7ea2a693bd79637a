"""`dlx evaluate`: reload a run's best checkpoint and score it on a split it was never selected on."""
from __future__ import annotations

from pathlib import Path

import torch

from core.errors import DlxError
from archs.check import validate_spec
from train.checkpoint import load_checkpoint
from train.inputs import InputContract, check_dataset

SPLITS = ("val", "test")


def load_run_model(run_dir: str | Path, device="cpu"):
    """(model, spec, checkpoint) from a run folder's best.pt, loaded without executing code."""
    from archs.builder import build_model
    path = Path(run_dir) / "checkpoints" / "best.pt"
    checkpoint = load_checkpoint(path, device)
    spec = validate_spec(checkpoint["spec"], file=path)
    record = checkpoint["data"]
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
    from train.data import load_splits
    from train.data.tensors import TensorData
    from train.device import pick_device
    from train.loop import predict_logits
    if split not in SPLITS:
        raise DlxError(f"unknown split '{split}'; expected one of: {', '.join(SPLITS)}.", key="--split")
    model, spec, checkpoint = load_run_model(run_dir)
    plan = pick_device(spec.device)
    model = plan.place(model)
    splits = load_splits(spec.data)
    contract = InputContract.from_record(checkpoint["data"])
    check_dataset(splits.x[split], contract, spec.data.path)
    data = TensorData(splits, split, plan.device)
    logits = predict_logits(model, data, plan)
    loss = torch.nn.functional.cross_entropy(logits, data.y).item()
    predicted = logits.argmax(1)
    classes = logits.shape[1]
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    confusion.index_put_((data.y.cpu(), predicted.cpu()), torch.ones(len(data), dtype=torch.long), accumulate=True)
    return {"run": str(run_dir), "split": split, "samples": len(data), "loss": loss,
            "accuracy": (predicted == data.y).float().mean().item(), "confusion_matrix": confusion.tolist(),
            "class_names": list(checkpoint["data"]["class_names"]), "input_contract": contract.as_dict()}
