"""Ensemble benchmark: (1) time to fit weights for 20 members x 10,000 samples x 10 classes (goal: under one
second on 2 CPU cores); (2) best member vs plain average vs weighted vs greedy on test, for a pool of
diverse digits runs. Usage: python benchmarks/ensemble_bench.py [--quick]. Writes ensemble_bench.json here."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MLP = "model.layers=[Flatten, {Dense: {units: %d, activation: %s}}, {Dense: {units: classes}}]"
CNN = ("model.layers=[{Conv2D: {filters: %d, kernel_size: 3, padding: same, activation: relu}}, {MaxPooling2D: 2}, "
       "Flatten, {Dense: {units: classes}}]")
POOL = {  # name → (overrides, quick epochs, full epochs)
    "mlp64_relu": ([MLP % (64, "relu")], 10, 30),
    "mlp64_relu_seed1": ([MLP % (64, "relu"), "seed=1"], 10, 30),
    "mlp32_tanh": ([MLP % (32, "tanh")], 10, 30),
    "mlp128_gelu": ([MLP % (128, "gelu")], 10, 30),
    "cnn8": ([CNN % 8], 4, 12),
    "digits_cnn16": (["model.vars.width=16"], 4, 15),
    "poor_1epoch": ([MLP % (8, "relu"), "train.optimizer.lr=0.0005"], 1, 1),
}


def time_weight_fit(members=20, samples=10_000, classes=10, repeats=3) -> dict:
    from ensemble.methods import get_method
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, samples)
    logits = rng.normal(size=(members, samples, classes)) + rng.uniform(0.5, 3, (members, 1, 1)) * np.eye(classes)[y]
    log_probs = (logits - np.log(np.exp(logits).sum(2, keepdims=True))).astype(np.float32)
    result = {"members": members, "samples": samples, "classes": classes, "threads": torch.get_num_threads()}
    for name in ("weighted", "greedy"):
        fit = get_method(name)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            fit(log_probs, y)
            seconds.append(time.perf_counter() - start)
        result[f"{name}_seconds"] = min(seconds)
    return result


def pool_comparison(quick: bool) -> dict:
    from ensemble.api import build_ensemble
    from spec.load import load_spec
    from train.run import train
    rows, folder = {}, Path(tempfile.mkdtemp(prefix="dlx-ensemble-bench-"))
    for name, (overrides, quick_epochs, epochs) in POOL.items():
        spec = load_spec(ROOT / "configs" / "digits.yaml", [*overrides, f"name={name}", "output.save_last=false",
                                                              f"train.epochs={quick_epochs if quick else epochs}"])
        train(spec, out=folder / name)
    paths = [folder / n for n in POOL]
    for method, temperature in (("weighted", False), ("greedy", False), ("weighted", True)):
        key = method + ("+temperature" if temperature else "")
        result = build_ensemble(paths, method=method, temperature=temperature, out=folder / f"ensemble-{key}")
        rows.setdefault("best_member", {**result["results"]["best_member"]})
        rows.setdefault("average", result["results"]["average"])
        rows[key] = {**result["results"]["ensemble"], "weights": {Path(m["run"]).name: round(m["weight"], 4)
                                                                     for m in result["members"]}}
        rows[key]["fit_seconds"] = result["seconds"]["fit"]
        rows.setdefault("near_duplicates", [(Path(p["a"]).name, Path(p["b"]).name, p["disagreement"])
                                            for p in result["near_duplicates"]])
        rows.setdefault("members", {Path(m["run"]).name: {"val_accuracy": m["val_accuracy"],
                                                          "test_accuracy": m["test_accuracy"]}
                                    for m in result["members"]})
    rows["runs_folder"] = str(folder)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer epochs per pool member")
    args = parser.parse_args()
    report = {"quick": args.quick, "torch": torch.__version__, "weight_fit": time_weight_fit(),
              "pool": pool_comparison(args.quick)}
    out = Path(__file__).with_suffix(".json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    fit = report["weight_fit"]
    print(f"weights for {fit['members']} members x {fit['samples']} samples x {fit['classes']} classes: "
          f"weighted {fit['weighted_seconds']:.3f}s, greedy {fit['greedy_seconds']:.3f}s")
    for key in ("best_member", "average", "weighted", "greedy", "weighted+temperature"):
        r = report["pool"][key]
        print(f"{key:20s} test accuracy {r['test']['accuracy']:.4f}  NLL {r['test']['nll']:.4f}  "
              f"ECE {r['test']['ece']:.4f}   (val NLL {r['val']['nll']:.4f})")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
