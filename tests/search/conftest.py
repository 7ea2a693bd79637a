"""Search test helpers: a tiny digits spec (an MLP: about a second per epoch on 2 CPU cores) and spaces on it."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

TINY_SPEC = """\
name: tiny
data: {dataset: digits}
model:
  vars: {width: 16, dropout: 0.0}
  layers:
    - Flatten
    - Dense: {units: "${width}", activation: relu}
    - Dropout: "${dropout}"
    - Dense: {units: classes}
train: {epochs: 1, batch_size: 128, optimizer: {name: adam, lr: 0.01}}
device: cpu
"""

PARAMS = """\
params:
  train.optimizer.lr: {float: [1.0e-3, 5.0e-2], log: true}
  model.vars.width: {int: [8, 32], step: 8}
  model.vars.dropout: {choice: [0.0, 0.2]}
"""


@pytest.fixture
def make_space(tmp_path):
    """make_space(header, params=PARAMS) → path of a space file beside tiny.yaml."""
    (tmp_path / "tiny.yaml").write_text(TINY_SPEC)

    def make(header: str = "", params: str = PARAMS, name: str = "space.yaml") -> Path:
        path = tmp_path / name
        path.write_text("base: tiny.yaml\n" + textwrap.dedent(header) + params)
        return path
    return make


def load_trials(search_dir: Path, name: str = "space"):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{search_dir / 'study.db'}")
    return study.get_trials(deepcopy=False)
