"""data.cache: streamed image folders and memory-mapped arrays train on exactly the batches an in-memory run
sees (same order, same normalisation, same augmentation), resume exactly, and `auto` picks by the budget."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_files import BN_CNN, TINY_DENSE, images, write_png_folder

from dlx.archs.check import load_spec
from tests.conftest import assert_user_error, run_dlx
from tests.train.conftest import dlx
from dlx.train.data import load_splits
from dlx.train.data.formats import map_arrays
from dlx.train.data.order import batch_count, batch_indices, epoch_order
from dlx.train.rundir import TIMING_COLUMNS
from dlx.train.run import train


def rows(run_dir) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_COLUMNS} for line in lines]


def summary(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture
def folder_spec(tmp_path):
    """load(*overrides) → a spec training a small CNN with batch norm and augmentation on a PNG folder."""
    folder = write_png_folder(tmp_path / "images", per_class=14, size=(12, 10))
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: s\nseed: 0\ndata: {{dataset: image_folder, path: {folder}, workers: 1, augment: "
                    f"{{random_crop_padding: 2, horizontal_flip: true}}}}\n{BN_CNN}\n"
                    f"train: {{epochs: 2, batch_size: 8, optimizer: {{name: adam, lr: 0.01}}}}\n"
                    "device: {type: cpu, threads: 1}\n")
    return lambda *overrides: load_spec(path, list(overrides))


def test_a_streamed_run_equals_an_in_memory_run(folder_spec, tmp_path):
    memory = train(folder_spec("data.cache=memory"), out=tmp_path / "memory")
    stream = train(folder_spec("data.cache=stream"), out=tmp_path / "stream")
    assert rows(memory.run_dir) == rows(stream.run_dir)
    assert memory.summary["test_accuracy"] == stream.summary["test_accuracy"]
    assert memory.summary["test_loss"] == pytest.approx(stream.summary["test_loss"], rel=1e-6)
    assert (memory.summary["data_cache"], stream.summary["data_cache"]) == ("memory", "stream")
    best = [torch.load(run / "checkpoints" / "best.pt", weights_only=True)["data"] for run in (tmp_path / "memory",
                                                                                                  tmp_path / "stream")]
    assert best[0]["mean"] == best[1]["mean"] and best[0]["std"] == best[1]["std"]
    assert best[0]["input"] == best[1]["input"]  # dtype, value range and size: the same input contract


def test_a_streamed_run_resumes_exactly(folder_spec, tmp_path):
    full = train(folder_spec("data.cache=stream", "train.epochs=3"), out=tmp_path / "full")

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(folder_spec("data.cache=stream", "train.epochs=3"), out=tmp_path / "cut", on_epoch=stop_after_first)
    resumed = train(None, resume=tmp_path / "cut")
    assert resumed.summary["status"] == "finished" and rows(resumed.run_dir) == rows(full.run_dir)


@pytest.mark.parametrize("budget, mode", [("1KB", "stream"), ("1GB", "memory"), (0.5, "memory")])
def test_auto_decodes_into_memory_only_what_fits_the_budget(folder_spec, tmp_path, budget, mode):
    result = train(folder_spec(f"data.memory_budget={budget}", "train.epochs=1"), out=tmp_path / "run")
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert result.summary["data_cache"] == mode and split["cache"]["mode"] == mode
    decoded = 3 * 14 * 3 * 10 * 12  # images × RGB × height × width, uint8
    assert split["cache"]["decoded_bytes"] == decoded
    assert split["cache"]["reason"].startswith(f"{mode} (data.cache: auto)")
    assert ("fit within" if mode == "memory" else "exceed") in split["cache"]["reason"]


def test_train_says_when_it_streams(folder_spec, tmp_path):
    spec = tmp_path / "spec.yaml"
    result = dlx("train", spec, "--out", tmp_path / "run", "--set", "data.memory_budget=1KB", "--set",
                 "train.epochs=1")
    assert result.exit_code == 0, result.output
    assert "data: stream (data.cache: auto): 0.0 MiB decoded exceed data.memory_budget 0.0 MiB" in result.output


def test_split_json_lists_files_relative_to_the_data_root_and_survives_a_move(folder_spec, tmp_path):
    train(folder_spec("data.cache=stream", "train.epochs=1"), out=tmp_path / "run")
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    listed = split["files"]["train"] + split["files"]["val"] + split["files"]["test"]
    assert sorted(listed) == sorted(p.relative_to(tmp_path / "images").as_posix()
                                    for p in (tmp_path / "images").rglob("*.png"))
    assert not any(name.startswith("/") for name in listed)
    moved = shutil.copytree(tmp_path / "images", tmp_path / "elsewhere" / "images")  # copy2 keeps mtimes
    again = load_splits(folder_spec("data.cache=stream", f"data.path={moved}").data).split_record
    assert again["fingerprint"] == split["fingerprint"] and again["files"] == split["files"]


def test_a_rewritten_image_changes_the_fingerprint_and_blocks_resume(folder_spec, tmp_path):
    spec = folder_spec("data.cache=stream", "train.epochs=2")

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(spec, out=tmp_path / "cut", on_epoch=stop_after_first)
    image = tmp_path / "images" / "dog" / "003.png"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same bytes, newer mtime
    result = run_dlx("train", "--resume", tmp_path / "cut")  # a fresh process: nothing cached
    assert_user_error(result, "the dataset or its split changed since this run started ('fingerprint' differs)")


def test_a_bad_image_read_by_a_worker_is_one_paragraph_naming_it(folder_spec, tmp_path):
    from PIL import Image
    odd = tmp_path / "images" / "fox" / "odd.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(odd)
    spec = tmp_path / "spec.yaml"
    result = dlx("train", spec, "--out", tmp_path / "run", "--set", "data.cache=stream", "--set", "data.workers=2")
    assert_user_error(result, str(odd), "image is 20x20 but earlier ones are 12x10", "data.image_size")


def test_a_memory_budget_that_is_no_size_is_refused(folder_spec, tmp_path):
    result = dlx("train", tmp_path / "spec.yaml", "--set", "data.memory_budget=lots")
    assert_user_error(result, "data.memory_budget", "a fraction of RAM (0-1], a byte count or a size such as '2GB'",
                      "'lots'")


def test_uncompressed_npz_members_and_npy_files_are_memory_mapped(tmp_path):
    x, y = images(40, (6, 6, 1), 3)
    np.savez(tmp_path / "plain.npz", x_train=x, y_train=y.astype(np.int64))
    np.savez_compressed(tmp_path / "packed.npz", x_train=x, y_train=y.astype(np.int64))
    (tmp_path / "arrays").mkdir()
    np.save(tmp_path / "arrays" / "x_train.npy", x)
    np.save(tmp_path / "arrays" / "y_train.npy", y.astype(np.int64))
    for source, mapped in (("plain.npz", True), ("packed.npz", False), ("arrays", True)):
        arrays = map_arrays(tmp_path / source)
        assert isinstance(arrays["x_train"], np.memmap) == mapped, source
        np.testing.assert_array_equal(arrays["x_train"], x)


@pytest.mark.parametrize("layout", [(6, 6, 1), (1, 6, 6), (36,)])
def test_a_memory_mapped_array_trains_as_it_does_in_memory(tmp_path, layout):
    """Channels-last arrays are turned channels-first per sample, as `channels_first` turns the whole array."""
    (tmp_path / "arrays").mkdir()
    x, y = images(64, layout, 3)
    np.save(tmp_path / "arrays" / "x_train.npy", x)
    np.save(tmp_path / "arrays" / "y_train.npy", y.astype(np.int64))
    model = TINY_DENSE if len(layout) == 1 else BN_CNN
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: n\nseed: 0\ndata: {{dataset: npz, path: {tmp_path / 'arrays'}, workers: 1}}\n"
                    f"{model}\ntrain: {{epochs: 2, batch_size: 8}}\ndevice: {{type: cpu, threads: 1}}\n")
    runs = {mode: train(load_spec(path, [f"data.cache={mode}"]), out=tmp_path / mode) for mode in ("memory", "stream")}
    assert runs["stream"].summary["data_cache"] == "stream"
    assert rows(runs["memory"].run_dir) == rows(runs["stream"].run_dir)
    splits = load_splits(load_spec(path, ["data.cache=stream"]).data)
    assert splits.x["train"].shape[1:] == (1, 6, 6) if len(layout) == 3 else (36,)


def test_the_batch_order_depends_only_on_seed_and_epoch():
    torch.manual_seed(1)
    first = epoch_order(50, seed=3, epoch=2)
    torch.manual_seed(2)
    torch.rand(10)  # other draws leave the order alone
    assert torch.equal(first, epoch_order(50, seed=3, epoch=2))
    assert sorted(first.tolist()) == list(range(50))
    assert not torch.equal(first, epoch_order(50, seed=3, epoch=3))
    assert not torch.equal(first, epoch_order(50, seed=4, epoch=2))


@pytest.mark.parametrize("n, batch_size", [(17, 8), (16, 8), (9, 8), (1, 8), (5, 5), (0, 4)])
def test_batches_cover_each_sample_once_and_drop_a_last_batch_of_one_when_shuffling(n, batch_size):
    order = epoch_order(n, 0, 1)
    shuffled = list(batch_indices(n, batch_size, order))
    in_order = list(batch_indices(n, batch_size))
    assert torch.cat(in_order).tolist() == list(range(n)) if n else in_order == []
    kept = torch.cat(shuffled).tolist() if shuffled else []
    assert len(set(kept)) == len(kept) and len(kept) == (n - 1 if n % batch_size == 1 and n > 1 else n)
    assert len(shuffled) == batch_count(n, batch_size, shuffle=True)
    assert len(in_order) == batch_count(n, batch_size, shuffle=False)


def test_an_ensemble_of_streamed_runs_reads_their_splits_a_batch_at_a_time(folder_spec, tmp_path, monkeypatch):
    from dlx.ensemble.api import build_ensemble
    from dlx.ensemble.predictions import member_log_probs
    from dlx.train.data.lazy import LazyArray
    runs = [train(folder_spec("data.cache=stream", f"train.optimizer.lr={lr}"), out=tmp_path / f"lr{lr}")
            for lr in (0.01, 0.003)]
    read = []
    original = LazyArray.read_many
    monkeypatch.setattr(LazyArray, "read_many", lambda self, positions: read.append(len(positions)) or
                        original(self, positions))
    monkeypatch.setattr("dlx.ensemble.predictions.member_log_probs",
                        lambda *args, **kwargs: member_log_probs(*args, **{**kwargs, "batch_size": 8}))
    result = build_ensemble([run.run_dir for run in runs], method="average", out=tmp_path / "ensemble", device="cpu")
    assert sum(read) == 2 * sum(result["samples"].values()) and max(read) <= 8  # both members, all, 8 at a time
    for member, run in zip(result["members"], runs):  # what each run scored on its streamed test split itself
        assert member["test_accuracy"] == pytest.approx(run.summary["test_accuracy"])
        assert member["test_nll"] == pytest.approx(run.summary["test_loss"], rel=1e-4)


def test_the_report_of_a_streamed_run_decodes_only_the_images_it_shows(folder_spec, tmp_path, monkeypatch):
    from dlx.report import make_report
    from dlx.report.figures_run import WORST
    from dlx.train.data.lazy import ImageFiles
    run = train(folder_spec("data.cache=stream", "data.workers=0", "data.test_split=0.6"), out=tmp_path / "run")
    decoded = []
    original = ImageFiles.read
    monkeypatch.setattr(ImageFiles, "read", lambda self, i: decoded.append(i) or original(self, i))
    result = make_report(run.run_dir, out=tmp_path / "report")
    numbers = json.loads(Path(result["json"]).read_text())["numbers"]
    assert numbers["test_accuracy_recomputed"] == pytest.approx(run.summary["test_accuracy"])
    shown = min(WORST, numbers["test_samples"])
    assert numbers["test_samples"] > WORST  # so that decoding the split whole would show in the count
    assert any(f["name"] == "worst_test_images" for f in result["figures"])
    assert len(decoded) == numbers["test_samples"] + shown  # each test image once to predict, then the grid
