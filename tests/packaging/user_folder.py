"""A user's own project folder: the generic module names ML projects have (nanoGPT's and timm's train.py, a
utils.py, ...), each of which fails loudly if Python ever imports it in place of dlx's own code."""
from __future__ import annotations

from pathlib import Path

USER_MODULES = ["train", "search", "core", "cli", "utils", "report", "export", "experiment", "archs", "ensemble"]

SPEC = """\
name: mine
data: {dataset: digits}
model:
  layers:
    - Conv2D: {filters: 8, kernel_size: 3, padding: same, activation: relu}
    - MaxPooling2D: 2
    - Flatten
    - Dense: {units: classes}
train: {epochs: 2, batch_size: 64, optimizer: {name: adam, lr: 0.01}}
device: cpu
"""

SPACE = """\
base: spec.yaml
sampler: random
trials: 2
pruner: none
params:
  train.optimizer.lr: {float: [3.0e-3, 3.0e-2], log: true}
"""


def user_folder(folder: Path) -> Path:
    """`folder` with the user's modules, a spec and a search space in it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in USER_MODULES:
        (folder / f"{name}.py").write_text(f'raise SystemExit("the user\'s own {name}.py ran instead of dlx")\n')
    (folder / "spec.yaml").write_text(SPEC)
    (folder / "space.yaml").write_text(SPACE)
    return folder


def assert_dlx_ran(result) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"exit {result.returncode}:\n{output[-3000:]}"
    assert "the user's own" not in output and "Traceback" not in output, output[-3000:]
