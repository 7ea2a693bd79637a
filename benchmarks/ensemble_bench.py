"""Ensemble benchmark: (1) time to fit weights for 20 members x 10,000 samples x 10 classes (goal: under one
second on 2 CPU cores; `auto`, which cross-validates four methods, is timed too); (2) on three pools of digits
runs — differently seeded and sized CNNs, different architectures, a search's trials — best member vs plain average
vs the default ensemble (`auto`, for accuracy) on test data. Goal per pool: ensemble test accuracy >=
max(best member, average) - 0.3 points, and ensemble test NLL <= the best member's.
`--data mnist5k` runs the same pools on 5,000 real MNIST images (4,000 train of which 400 validate, 1,000 test;
tests/realdata.py): digits' 143 validation images are too few to fit weights that generalise.
Usage: python benchmarks/ensemble_bench.py [--quick] [--data digits|mnist5k]. Writes ensemble_bench[_DATA].json here."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NO_VARS = "model.vars={}"  # custom layer lists reference none of digits.yaml's vars
MLP = "model.layers=[Flatten, {Dense: {units: %d, activation: %s}}, {Dense: {units: classes}}]"
CNN = ("model.layers=[{Conv2D: {filters: %d, kernel_size: 3, padding: same, activation: relu}}, {MaxPooling2D: 2}, "
       "Flatten, {Dense: {units: classes}}]")
ARCHITECTURES = {  # name → (overrides, quick epochs, full epochs)
    "mlp64_relu": ([NO_VARS, MLP % (64, "relu")], 10, 30),
    "mlp64_relu_seed1": ([NO_VARS, MLP % (64, "relu"), "seed=1"], 10, 30),
    "mlp32_tanh": ([NO_VARS, MLP % (32, "tanh")], 10, 30),
    "mlp128_gelu": ([NO_VARS, MLP % (128, "gelu")], 10, 30),
    "cnn8": ([NO_VARS, CNN % 8], 4, 12),
    "digits_cnn16": (["model.vars.width=16"], 4, 15),
    "poor_1epoch": ([NO_VARS, MLP % (8, "relu"), "train.optimizer.lr=0.0005"], 1, 1),
}
SEEDS_AND_SIZES = {f"digits_w{w}_s{s}": ([f"model.vars.width={w}", f"seed={s}"], 4, 12)
                   for w in (8, 16, 32) for s in (0, 1)}
SEARCH = {"trials": (8, 16), "epochs": (4, 8)}  # quick, full: configs/search_digits.yaml with every checkpoint kept
ACCURACY_SLACK = 0.003  # the goal's 0.3 points
DATA_OVERRIDES: list[str] = []  # --data mnist5k: where every pool member and trial reads its data


def time_weight_fit(members=20, samples=10_000, classes=10, repeats=3) -> dict:
    from dlx.ensemble.methods import get_method
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, samples)
    logits = rng.normal(size=(members, samples, classes)) + rng.uniform(0.5, 3, (members, 1, 1)) * np.eye(classes)[y]
    log_probs = (logits - np.log(np.exp(logits).sum(2, keepdims=True))).astype(np.float32)
    result = {"members": members, "samples": samples, "classes": classes, "threads": torch.get_num_threads()}
    from dlx.ensemble.selection import select
    for name, fit in (("weighted", get_method("weighted")), ("greedy", get_method("greedy")), ("auto", select)):
        seconds = []
        for _ in range(repeats if name != "auto" else 1):
            start = time.perf_counter()
            fit(log_probs, y)
            seconds.append(time.perf_counter() - start)
        result[f"{name}_seconds"] = min(seconds)
    return result


def train_pool(pool: dict, folder: Path, quick: bool) -> list[Path]:
    from dlx.archs.check import load_spec
    from dlx.train.run import train
    for name, (overrides, quick_epochs, epochs) in pool.items():
        if (folder / name / "checkpoints" / "best.pt").is_file():
            continue  # --runs-folder: trained by an earlier call
        spec = load_spec(ROOT / "configs" / "digits.yaml", [*DATA_OVERRIDES, *overrides, f"name={name}",
                                                              "output.save_last=false",
                                                              f"train.epochs={quick_epochs if quick else epochs}"])
        train(spec, out=folder / name)
    return [folder / n for n in pool]


def search_pool(folder: Path, quick: bool) -> list[Path]:
    import yaml
    from dlx.search import run_search
    space = yaml.safe_load((ROOT / "configs" / "search_digits.yaml").read_text())
    space.update(base=str(ROOT / "configs" / "digits.yaml"), trials=SEARCH["trials"][not quick], keep=None,
                 overrides={"train.epochs": SEARCH["epochs"][not quick], "output.save_last": False,
                            **{key: yaml.safe_load(value) for key, value in (o.split("=", 1) for o in DATA_OVERRIDES)}})
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    if not (folder / "search" / "leaderboard.json").is_file():
        run_search(path, out=folder / "search", workers=1)
    return [folder / "search"]


def compare(paths: list[Path], out: Path) -> dict:
    """Best member, plain average and the default ensemble on test data; whether the goal is met."""
    from dlx.ensemble.api import build_ensemble
    result = build_ensemble(paths, method="auto", out=out)
    results = result["results"]
    row = {"members": len(result["members"]), "skipped": len(result["skipped"]), "method": result["method"],
           "reason": result["selection"]["reason"], "fit_seconds": result["seconds"]["fit"],
           **{key: {"test_accuracy": results[key]["test"]["accuracy"], "test_nll": results[key]["test"]["nll"],
                    "val_accuracy": results[key]["val"]["accuracy"], "val_nll": results[key]["val"]["nll"]}
              for key in ("best_member", "average", "ensemble")},
           "weights": {m["id"]: round(m["weight"], 4) for m in result["members"]}}
    ensemble, best, average = row["ensemble"], row["best_member"], row["average"]
    floor = max(best["test_accuracy"], average["test_accuracy"]) - ACCURACY_SLACK
    row["goal_accuracy"] = ensemble["test_accuracy"] >= floor
    row["goal_nll"] = ensemble["test_nll"] <= best["test_nll"]
    return row


def pool_comparison(quick: bool, folder: Path | None = None) -> dict:
    folder = folder or Path(tempfile.mkdtemp(prefix="dlx-ensemble-bench-"))
    pools = {"seeds and widths": lambda f: train_pool(SEEDS_AND_SIZES, f, quick),
             "architectures": lambda f: train_pool(ARCHITECTURES, f, quick),
             "search trials": lambda f: search_pool(f, quick)}
    rows = {}
    for name, make in pools.items():
        pool_dir = folder / name.replace(" ", "_")
        pool_dir.mkdir(exist_ok=True)
        rows[name] = compare(make(pool_dir), pool_dir / "ensemble")
        print(f"{name}: {rows[name]['method']} ({rows[name]['members']} members)", flush=True)
    rows["runs_folder"] = str(folder)
    return rows


def print_table(pools: dict) -> None:
    print(f"{'pool':18s} {'members':>7s}  {'best member':>15s}  {'plain average':>15s}  {'ensemble':>15s}  "
          f"{'method':22s} goal")
    print(f"{'':18s} {'':>7s}  {'acc':>7s} {'NLL':>7s}  {'acc':>7s} {'NLL':>7s}  {'acc':>7s} {'NLL':>7s}")
    for name, row in pools.items():
        if not isinstance(row, dict):
            continue
        cells = "  ".join(f"{row[k]['test_accuracy']:7.4f} {row[k]['test_nll']:7.4f}"
                          for k in ("best_member", "average", "ensemble"))
        goal = "met" if row["goal_accuracy"] and row["goal_nll"] else (
            f"missed ({'accuracy' if not row['goal_accuracy'] else ''}{' NLL' if not row['goal_nll'] else ''})")
        print(f"{name:18s} {row['members']:7d}  {cells}  {row['method']:22s} {goal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer epochs per pool member")
    parser.add_argument("--runs-folder", type=Path, help="where pool runs go; runs already there are reused")
    parser.add_argument("--data", choices=["digits", "mnist5k"], default="digits")
    args = parser.parse_args()
    if args.data == "mnist5k":
        from tests.realdata import write_mnist5k
        root = write_mnist5k(Path(tempfile.mkdtemp(prefix="dlx-mnist5k-")))
        DATA_OVERRIDES.extend(["data.dataset=mnist", f"data.root={root}"])
    report = {"quick": args.quick, "data": args.data, "torch": torch.__version__, "weight_fit": time_weight_fit(),
              "pools": pool_comparison(args.quick, args.runs_folder)}
    from dlx.core.files import atomic_write_json
    out = Path(__file__).with_name(f"ensemble_bench{'' if args.data == 'digits' else '_' + args.data}.json")
    atomic_write_json(out, report)
    fit = report["weight_fit"]
    print(f"weights for {fit['members']} members x {fit['samples']} samples x {fit['classes']} classes: "
          f"weighted {fit['weighted_seconds']:.3f}s, greedy {fit['greedy_seconds']:.3f}s, "
          f"auto {fit['auto_seconds']:.3f}s")
    print("test data (never used to fit or choose):")
    print_table(report["pools"])
    print(f"written to {out}")


if __name__ == "__main__":
    main()
