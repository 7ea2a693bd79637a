"""Peak memory of streamed training, measured in a fresh process: an image folder several times larger (decoded)
than data.memory_budget trains in stream mode within the budget plus a stated overhead, with the same metrics as
in memory; a memory-mapped .npy array larger than that overhead trains with peak RSS growth below its size.

The training process first trains the same spec on a tiny copy of the data (so that imports, torch's one-time
set-up and library caches are in place), then its peak RSS (VmHWM, reset through /proc/self/clear_refs) is
compared with its RSS before the measured run. Decoding worker processes are not counted: each holds a few
batches, and their pages of a mapped file are the kernel's page cache, which it reclaims under pressure."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dataset_files import BN_CNN, images

from tests.conftest import ROOT

MiB = 2**20
OVERHEAD = 112 * MiB  # the streamed run beyond the budget, for the 32×32 images and model below (measured: 63
#                       MiB): an evaluation batch (1,024 images as float32 and the model's activations on it, ~50
#                       MiB), the batches the workers prefetch, the file lists and split records. It does not grow
#                       with the data: the held data shows as the difference to the in-memory run instead.


CHILD = """
import json, re, sys
from dlx.archs.check import load_spec
from dlx.train.run import train

def kib(field):
    return int(re.search(field + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))

spec, out, warm, overrides = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
train(load_spec(spec, overrides + [f"data.path={warm}"]), out=out + "-warm")  # lazy imports, library caches
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
before = kib("VmRSS")
result = train(load_spec(spec, overrides), out=out)
print(json.dumps({"growth": (kib("VmHWM") - before) * 1024, "summary": result.summary}))
"""


def train_measured(spec: Path, out: Path, warm: Path, *overrides: str) -> dict:
    """Train in a fresh interpreter, after a warm-up run on the data at `warm`: its summary and the growth of its
    peak RSS (bytes) during the measured run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(spec), str(out), str(warm), *overrides],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_folder(root: Path, count: int, side: int, classes: int = 4) -> Path:
    from PIL import Image
    pixels, labels = images(count, (side, side, 3), classes)
    for i, (image, label) in enumerate(zip(pixels, labels)):
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:05d}.png", compress_level=1)
    return root


def metric_rows(run_dir: Path) -> list[dict]:
    from dlx.train.rundir import TIMING_COLUMNS
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_COLUMNS} for line in lines]


def write_arrays(folder: Path, count: int, features: int) -> int:
    """x_train.npy (uint8, written in slices: the test process holds no copy either) and y_train.npy; its bytes."""
    folder.mkdir()
    x = np.lib.format.open_memmap(folder / "x_train.npy", "w+", np.uint8, (count, features))
    labels = np.arange(count) % 4
    for start in range(0, count, 5000):
        rows = labels[start:start + 5000]
        x[start:start + 5000] = rows[:, None] * 60 + np.random.default_rng(start).integers(0, 40, (len(rows), features))
    x.flush()
    del x
    np.save(folder / "y_train.npy", labels.astype(np.int64))
    return count * features


@pytest.mark.slow  # 20,000 PNG files, trained twice in fresh processes
@pytest.mark.xdist_group("heavy")
def test_a_folder_six_times_the_budget_streams_within_it_and_matches_memory(tmp_path):
    folder = write_folder(tmp_path / "images", count=20_000, side=32)
    warm = write_folder(tmp_path / "warm", count=200, side=32)
    decoded = 20_000 * 3 * 32 * 32
    budget = decoded // 6
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: big\nseed: 0\ndata: {{dataset: image_folder, path: {folder}, workers: 1, "
                    f"memory_budget: {budget}}}\n{BN_CNN}\ntrain: {{epochs: 1, batch_size: 64}}\n"
                    "device: {type: cpu, threads: 1}\n")
    stream = train_measured(spec, tmp_path / "stream", warm)
    assert stream["summary"]["data_cache"] == "stream"  # auto: the decoded folder exceeds the budget
    assert stream["growth"] < budget + OVERHEAD, (stream["growth"] / MiB, budget / MiB)
    memory = train_measured(spec, tmp_path / "memory", warm, "data.cache=memory")
    assert memory["growth"] - stream["growth"] > 0.75 * decoded, (memory["growth"] / MiB, stream["growth"] / MiB)
    assert metric_rows(tmp_path / "stream") == metric_rows(tmp_path / "memory")
    assert stream["summary"]["test_accuracy"] == memory["summary"]["test_accuracy"]


@pytest.mark.slow  # a 160 MB array, trained in a fresh process
@pytest.mark.xdist_group("heavy")
def test_a_memory_mapped_array_trains_with_peak_rss_below_its_size(tmp_path):
    size = write_arrays(tmp_path / "arrays", 40_000, 4096)
    write_arrays(tmp_path / "warm", 400, 4096)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: mapped\nseed: 0\ndata: {{dataset: npz, path: {tmp_path / 'arrays'}, workers: 1, "
                    "cache: stream}\nmodel:\n  layers: [{Dense: {units: 8, activation: relu}}, "
                    "{Dense: {units: classes}}]\n"
                    "train: {epochs: 1, batch_size: 256}\ndevice: {type: cpu, threads: 1}\n")
    result = train_measured(spec, tmp_path / "run", tmp_path / "warm")
    assert result["summary"]["status"] == "finished" and result["summary"]["val_accuracy"] > 0.4  # chance: 0.25
    assert result["growth"] < size / 2, (result["growth"] / MiB, size / MiB)
