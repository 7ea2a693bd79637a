"""dlx's CUDA paths, run for real on a GPU: bf16 autocast, channels_last and data resident on the device,
torch.compile, checkpoints moving between GPU and CPU, ensemble predictions on the GPU, torchrun with NCCL and
search workers sharing a GPU. `benchmarks/gpu.py` runs these (`pytest -m gpu`); without CUDA they skip, which is
what CI (no GPU) does: they are checked on a GPU machine, not in CI.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, run_dlx

NO_CUDA = "no CUDA device visible: these check dlx's GPU paths (run benchmarks/gpu.py on a GPU machine)"
pytestmark = [pytest.mark.gpu, pytest.mark.xdist_group("heavy"),
              pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]

DIGITS = ROOT / "configs" / "digits.yaml"
CPU_ONLY = {"CUDA_VISIBLE_DEVICES": ""}  # a fresh process that sees no GPU: device auto lands on the CPU


def train(out: Path, *sets: str, env: dict | None = None, extra: tuple = ()) -> dict:
    """`dlx train configs/digits.yaml` into `out`; its summary.json."""
    flags = [part for item in ("train.epochs=3", *sets) for part in ("--set", item)]
    run_dlx("train", DIGITS, "--out", out, "--quiet", "--json", *flags, *extra, env=env, check=0)
    return json.loads((out / "summary.json").read_text())


def evaluate(run: Path, env: dict | None = None) -> dict:
    return json.loads(run_dlx("evaluate", run, "--split", "test", "--json", env=env, check=0).stdout)


def epochs(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_cuda_run_learns_in_bf16_with_channels_last_and_data_on_the_device(tmp_path):
    summary = train(tmp_path / "run", "device=cuda")
    assert summary["device"].startswith("cuda") and summary["precision"] == "bf16"
    assert summary["channels_last"] is True and summary["data_cache"] == "memory"
    assert summary["test_accuracy"] > 0.8  # 10 classes: chance is 0.1


def test_the_training_data_stays_resident_on_the_gpu():
    from dlx.archs.check import load_spec
    from dlx.train import TensorData, load_splits
    splits = load_splits(load_spec(DIGITS).data)
    data = TensorData(splits, "train", torch.device("cuda"))
    x, y = next(data.batches(64, torch.Generator(device="cpu").manual_seed(0)))
    assert data.x.is_cuda and data.y.is_cuda and x.is_cuda and y.is_cuda


def test_torch_compile_trains_as_eager_does(tmp_path):
    eager = train(tmp_path / "eager", "device=cuda", "train.epochs=2")
    compiled = train(tmp_path / "compiled", "device=cuda", "train.epochs=2", "train.compile=true")
    for a, b in zip(epochs(tmp_path / "eager"), epochs(tmp_path / "compiled")):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.05)  # bf16 and fused kernels round apart
        assert abs(b["val_accuracy"] - a["val_accuracy"]) <= 0.03
    assert abs(compiled["test_accuracy"] - eager["test_accuracy"]) <= 0.03


def test_a_gpu_checkpoint_evaluates_on_the_cpu(tmp_path):
    summary = train(tmp_path / "run")  # device auto: CUDA here
    assert summary["device"].startswith("cuda")
    on_cpu = evaluate(tmp_path / "run", env=CPU_ONLY)  # fp32 on the CPU against bf16 on the GPU
    assert on_cpu["accuracy"] == pytest.approx(summary["test_accuracy"], abs=0.02)
    assert on_cpu["loss"] == pytest.approx(summary["test_loss"], rel=0.05, abs=0.01)


def test_a_cpu_run_evaluates_and_resumes_on_the_gpu(tmp_path):
    run = tmp_path / "run"
    summary = train(run, "train.epochs=2", env=CPU_ONLY)
    assert summary["device"] == "cpu" and summary["precision"] == "fp32"
    on_gpu = evaluate(run)
    assert on_gpu["accuracy"] == pytest.approx(summary["test_accuracy"], abs=0.02)
    assert on_gpu["loss"] == pytest.approx(summary["test_loss"], rel=0.05, abs=0.01)
    run_dlx("train", "--resume", run, "--epochs", "4", "--quiet", check=0)
    resumed = json.loads((run / "summary.json").read_text())
    assert resumed["epochs"] == 4 and resumed["device"].startswith("cuda") and resumed["status"] == "finished"
    assert [e["epoch"] for e in epochs(run)] == [1, 2, 3, 4]
    assert resumed["test_accuracy"] > 0.8


def test_ensemble_predictions_on_the_gpu_equal_the_cpu_ones(tmp_path):
    members = [tmp_path / f"m{seed}" for seed in (0, 1)]
    for seed, member in enumerate(members):
        train(member, f"seed={seed}", "train.epochs=2")
    results = {}
    for device in ("cpu", "cuda"):  # each on its own copies: the prediction cache must not answer for the other
        copies = [shutil.copytree(m, tmp_path / device / m.name) for m in members]
        out = run_dlx("ensemble", *copies, "--device", device, "--method", "average", "--out",
                      tmp_path / f"ensemble-{device}", "--json", check=0)
        results[device] = json.loads(out.stdout)
        assert results[device]["cache"] == {"hits": 0, "misses": 2}
    for split in ("val", "test"):
        cpu, cuda = (results[d]["results"]["ensemble"][split] for d in ("cpu", "cuda"))
        assert cuda["nll"] == pytest.approx(cpu["nll"], rel=1e-3, abs=1e-4)
        assert cuda["accuracy"] == pytest.approx(cpu["accuracy"], abs=0.006)  # one image may flip on a tie


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="--nproc 2 with NCCL needs two GPUs")
def test_two_processes_train_with_nccl(tmp_path):
    summary = train(tmp_path / "run", extra=("--nproc", "2"))
    assert summary["world_size"] == 2 and summary["device"].startswith("cuda")
    assert summary["status"] == "finished" and summary["test_accuracy"] > 0.8


def test_two_search_workers_share_one_gpu(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(f"base: {DIGITS}\noverrides: {{train.epochs: 2}}\nsampler: random\n"
                     "pruner: none\ntrials: 4\nparams:\n  train.optimizer.lr: {float: [1.0e-3, 1.0e-2], log: true}\n")
    run_dlx("search", space, "--devices", "cuda:0", "--workers", "2", "--out", tmp_path / "s", "--quiet", check=0)
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "s" / "trials").glob("*/summary.json")]
    assert len(summaries) >= 4 and {s["status"] for s in summaries} == {"finished"}
    assert all(s["device"].startswith("cuda") and s["precision"] == "bf16" for s in summaries)
    assert len({s["pid"] for s in summaries}) >= 2  # both workers took trials
