"""Two tiny digits runs (a batch-norm CNN and an MLP, one epoch each) and ensembles of them, built once per module."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "digits.yaml"
COMMON = ["train.epochs=1", "device.type=cpu", "output.save_last=false", "data.val_split=0.25"]
MLP = ["model.vars={}", "model.layers=[Flatten, {Dense: {units: 32, activation: relu}}, {Dense: {units: classes}}]"]


def _train(root: Path, name: str, overrides: list[str]) -> Path:
    from dlx.archs.check import load_spec
    from dlx.train.run import train
    spec = load_spec(CONFIG, [*COMMON, f"name={name}", "model.vars.width=8", *overrides] if name == "cnn"
                     else [*COMMON, f"name={name}", *overrides])
    return train(spec, out=root / name, quiet=True).run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export_runs")
    return {"cnn": _train(root, "cnn", ["seed=0"]), "mlp": _train(root, "mlp", [*MLP, "seed=1"])}


@pytest.fixture(scope="module")
def ensembles(runs, tmp_path_factory) -> dict[str, Path]:
    """A weighted ensemble with member temperatures, and a stacking one."""
    from dlx.ensemble import build_ensemble
    root = tmp_path_factory.mktemp("export_ensembles")
    members = [runs["cnn"], runs["mlp"]]
    build_ensemble(members, "average", out=root / "average", temperature=True)
    build_ensemble(members, "stacking", out=root / "stacking")
    return {"average": root / "average", "stacking": root / "stacking"}
