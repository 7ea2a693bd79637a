"""Distillation benchmark (`dlx distill`): per dataset and seed, three members of one MLP (different seeds), their
ensemble, the same architecture trained on labels only, and that architecture distilled from the ensemble; test
accuracy, test NLL and batch-1 latency (onnxruntime, the graph `dlx export` writes) of each.

Goal: the distilled student recovers at least half of the ensemble's test-NLL gain over the best member
((NLL_best − NLL_student) / (NLL_best − NLL_ensemble) >= 0.5), at one member's latency, and beats the same
student trained on labels only (lower test NLL).

Data: digits (1,797 8x8 images) and the 5,000 real MNIST images of tests/realdata.py (4,000 train, 1,000 test).
Usage: python benchmarks/distill_bench.py [--quick] [--seeds 3] [--temperature 2] [--alpha 0.5] [--data digits mnist5k]
Writes benchmarks/distill_bench.json (or --out) and prints a markdown table."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MLP = "model.layers=[Flatten, {Dense: {units: %d, activation: relu}}, {Dropout: 0.2}, {Dense: {units: classes}}]"
WIDTH = 128
EPOCHS = {"digits": (15, 30), "mnist5k": (10, 20)}  # quick, full
LATENCY_CALLS = 200


def spec(name: str, seed: int, epochs: int, data: list[str]):
    from dlx.archs.check import load_spec
    return load_spec(ROOT / "configs" / "digits.yaml", [
        *data, "model.vars={}", MLP % WIDTH, f"seed={seed}", f"name={name}", f"train.epochs={epochs}",
        "train.scheduler.name=cosine", "device.type=cpu", "device.threads=1", "output.save_last=false",
        "train.metric=val_loss"])


def latency_ms(folder: Path) -> float:
    """Median batch-1 latency of the exported ONNX graph (preprocessing included) in onnxruntime, 1 thread."""
    import onnxruntime
    from dlx.export import export_model
    out = Path(export_model(folder, "onnx")["out"])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), options, providers=["CPUExecutionProvider"])
    shape = json.loads((out / "export.json").read_text())["input"]["shape"][1:]
    one = np.random.default_rng(0).uniform(0, 255, size=(1, *shape)).astype(np.float32)
    name = session.get_inputs()[0].name
    for _ in range(20):
        session.run(None, {name: one})
    seconds = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        session.run(None, {name: one})
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * 1000


def scored(folder: Path) -> dict:
    from dlx.ensemble import evaluate_folder
    result = evaluate_folder(folder, "test")
    return {"accuracy": result["accuracy"], "nll": result["loss"], "latency_ms": latency_ms(folder)}


def one_seed(work: Path, seed: int, epochs: int, data: list[str], temperature: float, alpha: float) -> dict:
    """The four models of one seed, scored on the test split."""
    from dlx.ensemble import build_ensemble, distill
    from dlx.train.run import train
    members = []
    for k in range(3):
        run = work / f"member{k}"
        train(spec(f"member{k}", 100 * seed + k, epochs, data), out=run)
        members.append(run)
    ensemble = build_ensemble(members, method="average", metric="nll", temperature=True, out=work / "ensemble")
    best = Path(ensemble["results"]["best_member"]["run"])  # the best on validation (accuracy, then NLL)
    train(spec("labels_only", 100 * seed + 7, epochs, data), out=work / "labels_only")
    student = distill(work / "ensemble", spec("distilled", 100 * seed + 7, epochs, data), temperature, alpha,
                      out=work / "distilled")
    return {"seed": seed, "best_member": {"run": best.name, **scored(best)}, "ensemble": scored(work / "ensemble"),
            "labels_only": scored(work / "labels_only"), "distilled": scored(work / "distilled"),
            "distill_record": student.summary.get("distill")}


def verdict(rows: list[dict]) -> dict:
    """The goal's three parts, on the seed means."""
    mean = {k: {m: statistics.mean(r[k][m] for r in rows) for m in ("accuracy", "nll", "latency_ms")}
            for k in ("best_member", "ensemble", "labels_only", "distilled")}
    gain = mean["best_member"]["nll"] - mean["ensemble"]["nll"]
    recovered = (mean["best_member"]["nll"] - mean["distilled"]["nll"]) / gain if gain > 0 else None  # no gain
    return {"mean": mean, "ensemble_nll_gain": gain, "recovered": recovered,
            "half_recovered": recovered is not None and recovered >= 0.5,
            "one_member_latency": bool(mean["distilled"]["latency_ms"] <= 1.25 * mean["best_member"]["latency_ms"]),
            "beats_labels_only": bool(mean["distilled"]["nll"] < mean["labels_only"]["nll"])}


def table(results: dict) -> str:
    lines = ["| data | model | test accuracy | test NLL | batch-1 latency (ms) |", "|---|---|---:|---:|---:|"]
    for dataset, result in results["datasets"].items():
        mean = result["verdict"]["mean"]
        for key, label in (("best_member", "best member"), ("ensemble", "ensemble (3)"),
                           ("labels_only", "student, labels only"), ("distilled", "student, distilled")):
            runs = [r[key] for r in result["seeds"]]
            sd = statistics.stdev([r["nll"] for r in runs]) if len(runs) > 1 else 0.0
            lines.append(f"| {dataset} | {label} | {mean[key]['accuracy']:.4f} | {mean[key]['nll']:.4f} ± {sd:.4f} "
                         f"| {mean[key]['latency_ms']:.3f} |")
        v = result["verdict"]
        recovered = "no NLL gain to recover" if v["recovered"] is None else \
            f"recovered {v['recovered']:.2f} of the NLL gain"
        met = "met" if v["half_recovered"] else "not met"
        lines.append(f"| {dataset} | goal | {recovered} ({met}) | beats labels only: {v['beats_labels_only']} | "
                     f"one member's latency: {v['one_member_latency']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--data", nargs="+", default=["digits", "mnist5k"], choices=["digits", "mnist5k"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "distill_bench.json")
    args = parser.parse_args()
    import onnxruntime
    onnxruntime.set_default_logger_severity(3)
    started = time.perf_counter()
    results = {"settings": {"quick": args.quick, "temperature": args.temperature, "alpha": args.alpha,
                            "width": WIDTH, "seeds": args.seeds}, "datasets": {}}
    with tempfile.TemporaryDirectory(prefix="dlx-distill-bench-") as tmp:
        for dataset in args.data:
            data = []
            if dataset == "mnist5k":
                from tests.realdata import write_mnist5k
                data = ["data.dataset=mnist", f"data.root={write_mnist5k(Path(tmp) / 'mnist5k')}"]
            epochs = EPOCHS[dataset][0 if args.quick else 1]
            rows = [one_seed(Path(tmp) / dataset / str(seed), seed, epochs, data, args.temperature, args.alpha)
                    for seed in range(args.seeds)]
            results["datasets"][dataset] = {"epochs": epochs, "seeds": rows, "verdict": verdict(rows)}
    results["seconds"] = time.perf_counter() - started
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\n{results['seconds']:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
