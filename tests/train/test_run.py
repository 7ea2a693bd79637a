"""The trainer through its Python API (`train.run.train`): run folder, checkpoints, determinism,
optimisers and schedules, early stopping, NaN handling, evaluation."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from dataset_files import TINY_CNN, write_npz

from dlx.core.errors import DlxError
from dlx.archs.check import load_spec
from dlx.train.evaluate import evaluate_run, load_run_model
from dlx.train.rundir import METRIC_COLUMNS, TIMING_COLUMNS, new_run_dir
from dlx.train.run import train

SUMMARY_KEYS = {"best_epoch", "val_accuracy", "val_loss", "test_accuracy", "test_loss", "trainable_params", "epochs",
                "wall_seconds", "images_per_second", "device", "torch_version", "status"}


@pytest.fixture
def tiny_spec(tmp_path):
    """load(*overrides) → a validated spec training a tiny CNN on a 3-class 8x8 npz, on the CPU."""
    npz = write_npz(tmp_path / "d.npz", n_train=60, n_test=21)
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: tiny\nseed: 0\ndata: {{dataset: npz, path: {npz}}}\n{TINY_CNN}\n"
                    f"train: {{epochs: 2, batch_size: 16, optimizer: {{name: adam, lr: 0.01}}}}\n"
                    f"device: {{type: cpu, threads: 1}}\noutput: {{dir: {tmp_path / 'runs'}}}\n")
    return lambda *overrides: load_spec(path, list(overrides))


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_timing(history):
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in history]


def test_run_folder_holds_everything(tiny_spec, tmp_path):
    result = train(tiny_spec())
    run = result.run_dir
    assert run.parent == tmp_path / "runs" and run.name.startswith("tiny-") and len(run.name) == len("tiny-") + 15
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "metrics.jsonl", "metrics.csv", "split.json",
                                               "summary.json", "checkpoints"}
    history = rows(run)
    assert [r["epoch"] for r in history] == [1, 2] and all(set(r) == set(METRIC_COLUMNS) for r in history)
    with (run / "metrics.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == METRIC_COLUMNS and float(table[1]["val_loss"]) == pytest.approx(history[1]["val_loss"])
    summary = json.loads((run / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary) and summary["status"] == "finished" and summary["epochs"] == 2
    assert summary == result.summary and 0 <= summary["test_accuracy"] <= 1 and summary["device"] == "cpu"
    assert summary["val_accuracy"] == history[summary["best_epoch"] - 1]["val_accuracy"]
    split = json.loads((run / "split.json").read_text())
    assert len(split["val_indices"]) == 6 and split["sizes"] == {"train": 54, "val": 6, "test": 21}
    assert load_spec(run / "config.yaml") == tiny_spec()
    for name in ("best.pt", "last.pt"):
        state = torch.load(run / "checkpoints" / name, weights_only=True)
        assert state["format"] == "dlx-checkpoint-1" and "model" in state and state["data"]["input_shape"] == [1, 8, 8]
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 2
    assert not list(run.rglob("*.tmp"))  # atomic writes leave no temporaries behind


def test_same_seed_gives_identical_metrics_and_another_seed_does_not(tiny_spec, tmp_path):
    first = rows(train(tiny_spec(), out=tmp_path / "a").run_dir)
    second = rows(train(tiny_spec(), out=tmp_path / "b").run_dir)
    assert without_timing(first) == without_timing(second)
    other = rows(train(tiny_spec("seed=1"), out=tmp_path / "c").run_dir)
    assert without_timing(other) != without_timing(first)


def test_resume_in_process_continues_exactly(tiny_spec, tmp_path):
    """A run stopped after epoch 1 (its last.pt kept) and resumed equals a run that never stopped."""
    full = rows(train(tiny_spec("train.epochs=3", "data.augment={random_crop_padding: 2, horizontal_flip: true}"), out=tmp_path / "full").run_dir)
    spec = tiny_spec("train.epochs=3", "data.augment={random_crop_padding: 2, horizontal_flip: true}")

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(spec, out=tmp_path / "cut", on_epoch=stop_after_first)
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["status"] == "interrupted"
    resumed = train(None, resume=tmp_path / "cut")
    assert resumed.summary["status"] == "finished" and without_timing(rows(resumed.run_dir)) == without_timing(full)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_each_optimizer_trains(tiny_spec, tmp_path, optimizer):
    result = train(tiny_spec(f"train.optimizer={{name: {optimizer}, lr: 0.01, weight_decay: 0.001, nesterov: true}}",
                             "train.epochs=1"), out=tmp_path / "r")
    assert result.summary["status"] == "finished" and np.isfinite(result.summary["val_loss"])


@pytest.mark.parametrize("scheduler", ["none", "cosine", "step", "onecycle"])
def test_each_scheduler_trains(tiny_spec, tmp_path, scheduler):
    result = train(tiny_spec(f"train.scheduler={{name: {scheduler}, warmup_epochs: 1, step_size: 1}}",
                             "train.epochs=2"), out=tmp_path / "r")
    assert result.summary["status"] == "finished"
    lrs = [r["lr"] for r in rows(result.run_dir)]
    if scheduler == "none":
        assert lrs[1] == pytest.approx(0.01)  # after a one-epoch warm-up, the base rate
    else:
        assert lrs[0] < 0.01  # warm-up (or onecycle's ramp) starts below the base rate


def test_cosine_and_step_schedules_follow_their_formulas():
    from types import SimpleNamespace

    from dlx.train.optim import lr_factor
    cosine = lr_factor(SimpleNamespace(name="cosine", warmup_epochs=1, min_lr=0.0), 1.0, 10, 3)
    assert [cosine(0), cosine(9), cosine(10), cosine(20), cosine(30)] == pytest.approx([0.1, 1.0, 1.0, 0.5, 0.0])
    step = lr_factor(SimpleNamespace(name="step", warmup_epochs=0, min_lr=0.0, step_size=2, gamma=0.5), 1.0, 10, 6)
    assert [step(0), step(19), step(20), step(45)] == pytest.approx([1.0, 1.0, 0.5, 0.25])


def test_label_smoothing_grad_clip_and_augmentation_train(tiny_spec, tmp_path):
    result = train(tiny_spec("train.label_smoothing=0.1", "train.grad_clip=1.0", "train.epochs=1",
                             "data.augment={random_crop_padding: 2, horizontal_flip: true}"), out=tmp_path / "r")
    assert result.summary["status"] == "finished"


def test_augmentation_crops_and_flips_with_the_generator():
    from types import SimpleNamespace

    from dlx.train.data.tensors import make_augment
    assert make_augment(SimpleNamespace(random_crop_padding=0, horizontal_flip=False)) is None
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    flip = make_augment(SimpleNamespace(random_crop_padding=0, horizontal_flip=True))
    out = flip(x, torch.Generator().manual_seed(0))
    assert all(torch.equal(o, i) or torch.equal(o, i.flip(2)) for o, i in zip(out, x))
    crop = make_augment(SimpleNamespace(random_crop_padding=2, horizontal_flip=False))
    a, b = crop(x, torch.Generator().manual_seed(5)), crop(x, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and torch.equal(a, b)


def test_early_stopping_with_patience(tiny_spec, tmp_path):
    # with a vanishing learning rate validation accuracy never improves on epoch 1
    result = train(tiny_spec("train.epochs=6", "train.optimizer.lr=1e-9", "train.early_stopping={patience: 2}"),
                   out=tmp_path / "r")
    assert result.summary["epochs"] == 3 and result.summary["best_epoch"] == 1 and result.summary["stopped_early"]


def test_nan_loss_stops_with_epoch_and_batch_and_keeps_the_last_good_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(60, 10)) * 1e19).astype(np.float32)  # one SGD step with lr 10 overflows the logits
    np.savez(tmp_path / "big.npz", x_train=x, y_train=rng.permutation(np.arange(60) % 2))
    path = tmp_path / "spec.yaml"
    path.write_text(f"data: {{dataset: npz, path: {tmp_path / 'big.npz'}, normalize: false}}\n"
                    "model: {layers: [{Dense: {units: classes}}]}\n"
                    "train: {epochs: 4, batch_size: 64, optimizer: {name: sgd, lr: 10, momentum: 0}}\ndevice: cpu\n")
    with pytest.raises(DlxError, match=r"non-finite \(NaN or inf\) at epoch 2, batch 1 of 1.*epoch 1 are kept"):
        train(load_spec(path), out=tmp_path / "r")
    run = tmp_path / "r"
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert [r["epoch"] for r in rows(run)] == [1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "epoch 2" in summary["error"]


def test_run_names_cannot_leave_the_output_folder(tiny_spec, tmp_path):
    with pytest.raises(DlxError, match="outside the output folder"):
        tiny_spec("name=../escape")
    with pytest.raises(DlxError, match="outside"):
        new_run_dir(tmp_path / "runs", "../escape")
    assert not (tmp_path / "escape").exists() and not list(tmp_path.glob("escape*"))


def test_out_folder_that_already_holds_a_run_is_not_overwritten(tiny_spec, tmp_path):
    train(tiny_spec("train.epochs=1"), out=tmp_path / "r")
    before = (tmp_path / "r" / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(DlxError, match="already holds a run; use --resume"):
        train(tiny_spec("train.epochs=1"), out=tmp_path / "r")
    assert (tmp_path / "r" / "checkpoints" / "last.pt").read_bytes() == before


def test_evaluate_run_reloads_best_checkpoint(tiny_spec, tmp_path):
    result = train(tiny_spec(), out=tmp_path / "r")
    report = evaluate_run(tmp_path / "r", "test")
    assert report["accuracy"] == pytest.approx(result.summary["test_accuracy"])
    assert report["loss"] == pytest.approx(result.summary["test_loss"], rel=1e-5)
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == report["samples"] == 21
    assert np.trace(matrix) / matrix.sum() == pytest.approx(report["accuracy"])
    assert evaluate_run(tmp_path / "r", "val")["samples"] == 6
    model, spec, checkpoint = load_run_model(tmp_path / "r")
    assert not model.training and checkpoint["epoch"] == result.summary["best_epoch"]
    with pytest.raises(DlxError, match="unknown split 'train'"):
        evaluate_run(tmp_path / "r", "train")


def test_flat_npz_trains_a_dense_model(tmp_path):
    from dataset_files import TINY_DENSE
    x = np.random.default_rng(0).normal(size=(80, 6)).astype(np.float32)
    np.savez(tmp_path / "flat.npz", x_train=x, y_train=(x[:, 0] > 0).astype(np.int64))
    path = tmp_path / "spec.yaml"
    path.write_text(f"data: {{dataset: npz, path: {tmp_path / 'flat.npz'}}}\n{TINY_DENSE}\n"
                    "train: {epochs: 2, batch_size: 16}\ndevice: cpu\n")
    result = train(load_spec(path), out=tmp_path / "r")
    assert result.summary["status"] == "finished" and result.summary["trainable_params"] == 6 * 8 + 8 + 8 * 2 + 2


def test_augmentation_is_off_by_default(tiny_spec):
    augment = tiny_spec().data.augment
    assert augment.random_crop_padding == 0 and augment.horizontal_flip is False


@pytest.mark.parametrize("override, key", [
    ("data.split_seed=-1", "data.split_seed"),
    ("train.optimizer={name: adam, betas: [1.5, 0.9]}", "train.optimizer.betas.0"),
])
def test_settings_torch_or_numpy_would_reject_are_refused_by_the_spec(tiny_spec, override, key):
    with pytest.raises(DlxError, match=key.replace(".", r"\.")):
        tiny_spec(override)


def test_progress_display_choices(capsys):
    from dlx.train.progress import EpochLines, LiveBar, Silent, make_progress
    assert type(make_progress(quiet=True)) is Silent
    assert type(make_progress(quiet=False)) is EpochLines  # stderr is not a terminal under pytest
    assert issubclass(LiveBar, EpochLines)


def test_accuracy_ties_go_to_the_lower_validation_loss():
    from dlx.train.loop import better
    best = {"val_accuracy": 0.9, "val_loss": 0.30}
    assert better("val_accuracy", {"val_accuracy": 0.9, "val_loss": 0.20}, best)
    assert not better("val_accuracy", {"val_accuracy": 0.9, "val_loss": 0.40}, best)
    assert not better("val_accuracy", {"val_accuracy": 0.89, "val_loss": 0.01}, best)
    assert better("val_loss", {"val_accuracy": 0.5, "val_loss": 0.29}, best)
    assert not better("val_accuracy", {"val_accuracy": float("nan"), "val_loss": 0.1}, best)
    assert better("val_accuracy", {"val_accuracy": 0.1, "val_loss": 9.0}, None)
