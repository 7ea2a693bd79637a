"""One run on N processes (`dlx train --nproc N`, torchrun + DDP) against one process: training images/s, images/s
per process (or GPU), scaling efficiency (images/s at N ÷ N × images/s at 1) and the accuracy reached, on the same
spec and global batch. On CPU the processes share the cores (2 here give no speed-up: the figure shows the
overhead); on a GPU machine each process takes a GPU.

    python benchmarks/scale_bench.py [--nproc 1,2] [--data digits|mnist5k] [--epochs 5] [--reps 2]

Repetitions alternate the world sizes, so drifting load hits all alike. Writes benchmarks/scale_bench.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = ROOT / "configs" / "digits.yaml"


def run(nproc: int, out: Path, sets: list[str]) -> dict:
    """One `dlx train --nproc N` run; its summary, with the median training images/s over its epochs after the first
    (the first pays for start-up and warm-up)."""
    command = [sys.executable, "-m", "dlx", "train", str(SPEC), "--out", str(out), "--quiet", "--nproc", str(nproc)]
    for item in sets:
        command += ["--set", item]
    subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    speeds = [row["images_per_second"] for row in rows[1:]] or [rows[0]["images_per_second"]]
    return {"images_per_second": statistics.median(speeds), "val_accuracy": summary["val_accuracy"],
            "test_accuracy": summary["test_accuracy"], "wall_seconds": summary["wall_seconds"],
            "world_size": summary["world_size"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", default="1,2", help="world sizes to compare, the first is the reference")
    parser.add_argument("--data", choices=["digits", "mnist5k"], default="digits")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(n) for n in args.nproc.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="dlx-scale-"))
    sets = [f"train.epochs={args.epochs}", "output.save_last=false"]
    if args.data == "mnist5k":
        from tests.realdata import write_mnist5k
        sets += ["data.dataset=mnist", f"data.root={write_mnist5k(folder / 'data')}"]
    results: dict[int, list[dict]] = {n: [] for n in sizes}
    for rep in range(args.reps):
        for n in sizes:
            results[n].append(run(n, folder / f"n{n}-rep{rep}", sets))
    reference = statistics.median(r["images_per_second"] for r in results[sizes[0]])
    table = []
    for n in sizes:
        speed = statistics.median(r["images_per_second"] for r in results[n])
        table.append({"nproc": n, "images_per_second": round(speed, 1), "per_process": round(speed / n, 1),
                      "efficiency": round(speed / (n * reference / sizes[0]), 3),
                      "val_accuracy": statistics.median(r["val_accuracy"] for r in results[n]),
                      "test_accuracy": statistics.median(r["test_accuracy"] for r in results[n])})
    import torch
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
    record = {"data": args.data, "epochs": args.epochs, "reps": args.reps, "device": device, "rows": table}
    (ROOT / "benchmarks" / "scale_bench.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{'nproc':>5} {'images/s':>9} {'per proc':>9} {'efficiency':>10} {'val acc':>8} {'test acc':>8}  ({device})")
    for row in table:
        print(f"{row['nproc']:>5} {row['images_per_second']:>9,.0f} {row['per_process']:>9,.0f} "
              f"{row['efficiency']:>10.2f} {row['val_accuracy']:>8.4f} {row['test_accuracy']:>8.4f}")


if __name__ == "__main__":
    main()
