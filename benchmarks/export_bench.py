"""Exported models against eager PyTorch on the CPU: batch-1 latency (median of 200 calls after 20 warm-up calls)
and batch-256 throughput, for the graph `dlx export` writes (preprocessing included), in eager PyTorch, TorchScript
and onnxruntime. Goal: onnxruntime >= 1.5x eager at batch 1. Each model is a 1-epoch run of a case of
benchmarks/quality.py: every shipped config and preset (the weights don't change the speed); repetitions alternate
the runtimes so drifting load hits all alike.

    python benchmarks/export_bench.py [--threads 1] [--reps 5] [--only CASE]

Writes benchmarks/export_bench.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

def trained(name: str, folder: Path, data_root: Path) -> Path:
    """A 1-epoch run of a case of benchmarks/quality.py (every shipped config and preset, on the real data there)."""
    from dlx.archs.check import load_spec
    from benchmarks.quality import CASES, spec_file
    from dlx.train.run import train
    source, dataset = CASES[name]
    sets = ["train.epochs=1", "output.save_last=false"] + ([] if dataset == "digits" else [f"data.root={data_root}"])
    run = folder / name.replace(" ", "_")
    train(load_spec(spec_file(source, dataset, folder), sets), out=run)
    return run


def timed(predict, images, calls: int) -> float:
    """Median seconds of one call."""
    for _ in range(20):
        predict(images)
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        predict(images)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def measure(run: Path, reps: int) -> dict:
    import numpy as np
    import torch
    from dlx.export import export_model
    from dlx.export.api import build_graph
    from dlx.export.formats import FORMATS
    graph, _, _ = build_graph(run)
    runtimes = {"eager": lambda x: graph(torch.from_numpy(x)).numpy()}
    for fmt in ("torchscript", "onnx"):
        out = export_model(run, fmt)["out"]
        runtimes[fmt] = FORMATS.get(fmt).load(Path(out) / FORMATS.get(fmt).file)
    shape = json.loads((Path(out) / "export.json").read_text())["input"]["shape"][1:]
    rng = np.random.default_rng(0)
    one, batch = (rng.uniform(0, 255, size=(n, *shape)).astype(np.float32) for n in (1, 256))
    latency = {name: [] for name in runtimes}
    throughput = {name: [] for name in runtimes}
    with torch.inference_mode():
        for _ in range(reps):
            for name, predict in runtimes.items():
                latency[name].append(timed(predict, one, 200) * 1000)
                throughput[name].append(256 / timed(predict, batch, 10))
    return {"latency_ms": {k: statistics.median(v) for k, v in latency.items()},
            "images_per_second": {k: statistics.median(v) for k, v in throughput.items()},
            "onnx_vs_eager_batch1": statistics.median(e / o for e, o in zip(latency["eager"], latency["onnx"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every runtime (a service's worker)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", action="append", help="a case of benchmarks/quality.py (repeatable)")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    import onnxruntime
    onnxruntime.set_default_logger_severity(3)
    from benchmarks.quality import CASES, write_data
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        write_data(Path(folder) / "data")
        for name in args.only or CASES:
            rows[name] = measure(trained(name, Path(folder), Path(folder) / "data"), args.reps)
            print(name, json.dumps(rows[name]), flush=True)
    print(f"\n{'case':22s} {'batch-1 latency (ms)':>32s}   {'batch-256 images/s':>30s}  onnx/eager")
    print(f"{'':22s} {'eager':>10s} {'torchscr.':>10s} {'onnxrt':>10s}   {'eager':>9s} {'torchscr.':>10s} {'onnxrt':>9s}")
    for name, row in rows.items():
        lat, ips = row["latency_ms"], row["images_per_second"]
        print(f"{name:22s} {lat['eager']:10.3f} {lat['torchscript']:10.3f} {lat['onnx']:10.3f}   "
              f"{ips['eager']:9,.0f} {ips['torchscript']:10,.0f} {ips['onnx']:9,.0f}  {row['onnx_vs_eager_batch1']:.1f}x")
    (ROOT / "benchmarks" / "export_bench.json").write_text(json.dumps({"threads": args.threads, "rows": rows},
                                                                      indent=2) + "\n")


if __name__ == "__main__":
    main()
