"""`train.log.tensorboard: true` writes one scalar per metric per epoch into run/tensorboard/, or says how to
install the optional extra. TensorBoard is in the test extra; its absence is simulated by a stand-in package."""
from __future__ import annotations

import os

from tests.conftest import ROOT, assert_user_error, run_dlx

TINY = ("--quiet", "--set", "train.epochs=2", "--set", "model.vars.width=8", "--set", "train.log.tensorboard=true")


def test_missing_tensorboard_is_a_clear_error_before_training(tmp_path):
    shadow = tmp_path / "shadow" / "tensorboard"  # found first on PYTHONPATH: `import tensorboard` fails as if absent
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('tensorboard is not installed (simulated by the test)')\n")
    path = os.pathsep.join([str(tmp_path / "shadow"), str(ROOT)])
    result = run_dlx("train", "configs/digits.yaml", "--out", tmp_path / "run", *TINY, env={"PYTHONPATH": path})
    assert_user_error(result, "TensorBoard is not installed", "dlx[tensorboard]", "train.log.tensorboard: false")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_tensorboard_event_files_hold_a_point_per_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run_dlx("train", "configs/digits.yaml", "--out", tmp_path / "run", *TINY, check=0)  # forked: sees this sys.path
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "learning_rate"} <= tags
    assert [e.step for e in events.Scalars("accuracy/val")] == [1, 2]
    assert 0 <= events.Scalars("accuracy/val")[-1].value <= 1
