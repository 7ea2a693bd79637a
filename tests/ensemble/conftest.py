"""Digits runs trained once per test session: good members of different architectures, a same-architecture
copy with another seed, a deliberately poor one-epoch model, and a run on another split."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "digits.yaml"
COMMON = ["data.val_split=0.25", "output.save_last=false", "device.type=cpu"]
MLP = "model.layers=[Flatten, {Dense: {units: 64, activation: relu}}, {Dense: {units: classes}}]"
RUNS = {
    "mlp": [MLP, "train.epochs=20", "seed=0"],
    "mlp_seed1": [MLP, "train.epochs=20", "seed=1"],
    "tanh": ["model.layers=[Flatten, {Dense: {units: 32, activation: tanh}}, {Dropout: 0.1}, {Dense: {units: classes}}]",
             "train.epochs=20", "seed=2"],
    "cnn": ["model.layers=[{Conv2D: {filters: 8, kernel_size: 3, padding: same, activation: relu}}, {MaxPooling2D: 2}, "
            "Flatten, {Dense: {units: classes}}]", "train.epochs=6", "seed=3"],
    "poor": ["model.layers=[Flatten, {Dense: {units: 8, activation: relu}}, {Dense: {units: classes}}]",
             "train.epochs=1", "train.optimizer.lr=0.0005", "seed=4"],
    "other_split": [MLP, "train.epochs=1", "data.split_seed=1"],
}
GOOD = ["mlp", "mlp_seed1", "tanh", "cnn"]


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    from dlx.archs.check import load_spec
    from dlx.train.run import train
    root = tmp_path_factory.mktemp("runs")
    folders = {}
    for name, overrides in RUNS.items():
        layers = ["model.vars={}"] if any(o.startswith("model.layers=") for o in overrides) else []  # no unused vars
        spec = load_spec(CONFIG, [*COMMON, f"name={name}", *layers, *overrides])
        folders[name] = train(spec, out=root / name, quiet=True).run_dir
    return folders
