"""dlx measured side by side with hand-written PyTorch, in one process tree, alternating repetitions.

    python benchmarks/run.py [--quick]

Prints a table of ratios (medians over repetitions) and writes benchmarks/results.json.
Speed is only ever reported as a ratio against a reference measured in the same run.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DLX = [PY, "-m", "cli.main"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run_json(cmd: list[str]) -> tuple[dict, float]:
    """Run a command that prints JSON on its last line; return (data, max RSS in MB of the process)."""
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({process.returncode}):\n{process.stderr.read()}")
    lines = [line for line in text.strip().splitlines() if line.startswith("{")]
    if not lines:
        data = json.loads(text)
    else:
        try:
            data = json.loads(text)
        except ValueError:
            data = json.loads(lines[-1])
    return data, usage.ru_maxrss / 1024


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def alternate(reps: int, **candidates) -> dict[str, list]:
    """Run each candidate once per repetition, in turn, so drifting machine load hits all alike."""
    results = {name: [] for name in candidates}
    for _ in range(reps):
        for name, measure in candidates.items():
            results[name].append(measure())
    return results


def mnist_shaped(folder: Path, samples: int) -> Path:
    import numpy as np
    rng = np.random.default_rng(0)
    path = folder / "mnist_shaped.npz"
    x = rng.integers(0, 256, size=(samples, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=samples)
    np.savez(path, x_train=x, y_train=y, x_test=x[:1000], y_test=y[:1000])
    return path


def training(name: str, sets: list[str], reps: int, tmp: Path, threads: int) -> list[dict]:
    flags = sum((["--set", s] for s in sets + [f"device.threads={threads}", "train.scheduler.name=none"]), [])
    counter = iter(range(10_000))

    def dlx():
        data, rss = run_json(DLX + ["train", "configs/digits.yaml", "--out", str(tmp / f"{name}-{next(counter)}"),
                                    "--quiet", "--json"] + flags)
        return data["images_per_second"], rss

    def hand(loader):
        return lambda: (lambda d: (d[0]["images_per_second"], d[1]))(run_json(
            [PY, "benchmarks/reference.py", "train", "--spec", "configs/digits.yaml", "--loader", loader,
             "--threads", str(threads)] + flags))

    runs = alternate(reps, dlx=dlx, tensor=hand("tensor"), dataloader=hand("dataloader"))
    median = {k: statistics.median(v[0] for v in values) for k, values in runs.items()}
    rss = {k: statistics.median(v[1] for v in values) for k, values in runs.items()}
    rows = [
        {"comparison": f"train {name}: dlx vs hand-written tensor loop (images/s)", "dlx": median["dlx"],
         "reference": median["tensor"], "ratio": median["dlx"] / median["tensor"], "goal": ">= 1.0"},
        {"comparison": f"train {name}: dlx vs DataLoader loop (images/s)", "dlx": median["dlx"],
         "reference": median["dataloader"], "ratio": median["dlx"] / median["dataloader"], "goal": ">= 1.3"},
    ]
    if name == "digits":
        rows.append({"comparison": "peak memory of dlx train digits vs hand-written loop (max RSS MB)",
                     "dlx": rss["dlx"], "reference": rss["tensor"], "ratio": rss["dlx"] / rss["tensor"],
                     "goal": "<= 1.3"})
    return rows


def inference(reps: int, tmp: Path, threads: int) -> list[dict]:
    run_dir = tmp / "predict-run"
    run_json(DLX + ["train", "configs/digits.yaml", "--out", str(run_dir), "--quiet", "--json", "--set",
                    "train.epochs=1"])

    def dlx(path):
        return lambda: run_json([PY, "benchmarks/dlx_predict.py", str(run_dir), "--threads", str(threads),
                                 "--path", path])[0]["images_per_second"]

    runs = alternate(reps, evaluate=dlx("evaluate"), ensemble=dlx("ensemble"),
                     plain=lambda: run_json([PY, "benchmarks/reference.py", "predict", "--spec", "configs/digits.yaml",
                                             "--threads", str(threads)])[0]["images_per_second"])
    plain = statistics.median(runs["plain"])
    return [{"comparison": f"inference: dlx {name} path vs plain inference_mode (images/s)",
             "dlx": statistics.median(runs[name]), "reference": plain,
             "ratio": statistics.median(runs[name]) / plain, "goal": ">= 1.0"} for name in ("evaluate", "ensemble")]


def startup(reps: int) -> list[dict]:
    dlx_script = str(Path(PY).parent / "dlx")
    runs = alternate(reps, help=lambda: wall([dlx_script, "--help"]),
                     config=lambda: wall([dlx_script, "config", "configs/digits.yaml"]),
                     torch=lambda: wall([PY, "-c", "import torch"]))
    median = {k: statistics.median(v) for k, v in runs.items()}
    return [{"comparison": "start-up: dlx --help vs python -c 'import torch' (s)", "dlx": median["help"],
             "reference": median["torch"], "ratio": median["help"] / median["torch"], "goal": "dlx < 0.3 s"},
            {"comparison": "start-up: dlx config configs/digits.yaml vs import torch (s)", "dlx": median["config"],
             "reference": median["torch"], "ratio": median["config"] / median["torch"], "goal": "dlx < 0.5 s"}]


def search_workers(reps: int, tmp: Path, trials: int) -> list[dict]:
    """Equal budgets of 3-epoch, unpruned trials on the digits spec, with 1 and with 2 worker processes.

    Two figures: the whole command (start-up, imports and result files included), and the trial phase alone
    (first trial's start to last trial's end, from the study), which is what a search of hours amortises to."""
    space = tmp / "space.yaml"
    space.write_text(f"base: {ROOT / 'configs' / 'digits.yaml'}\noverrides: {{train.epochs: 3}}\nsampler: random\n"
                     "pruner: none\nparams:\n  train.optimizer.lr: {float: [1.0e-3, 1.0e-2], log: true}\n"
                     "  model.vars.width: {int: [16, 32], step: 16}\n")
    counter = iter(range(10_000))

    def per_hour(workers: int) -> tuple[float, float]:
        out = tmp / f"search-{workers}-{next(counter)}"
        start = time.perf_counter()
        subprocess.run(DLX + ["search", str(space), "--out", str(out), "--workers", str(workers), "--trials",
                              str(trials), "--quiet"], cwd=ROOT, env=ENV, check=True, capture_output=True)
        whole = time.perf_counter() - start
        return trials * 3600 / whole, trials * 3600 / trial_phase_seconds(out / "study.db")

    runs = alternate(reps, one=lambda: per_hour(1), two=lambda: per_hour(2))
    rows = []
    for position, what in enumerate(("whole command", "trial phase")):
        one = statistics.median(r[position] for r in runs["one"])
        two = statistics.median(r[position] for r in runs["two"])
        rows.append({"comparison": f"search digits, {trials} trials, {what}: --workers 2 vs 1 (trials/hour)",
                     "dlx": two, "reference": one, "ratio": two / one,
                     "goal": ">= 1.6" if what == "trial phase" else "(start-up included)"})
    return rows


def trial_phase_seconds(db: Path) -> float:
    import sqlite3
    with contextlib.closing(sqlite3.connect(db)) as connection:
        first, last = connection.execute("SELECT MIN(datetime_start), MAX(datetime_complete) FROM trials").fetchone()
    parse = datetime.datetime.fromisoformat
    return (parse(last) - parse(first)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and epochs (under 5 minutes)")
    args = parser.parse_args()
    reps, epochs = (3, 4) if args.quick else (5, 10)
    threads = os.cpu_count() or 1
    rows = []

    def note(text):
        print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        npz = mnist_shaped(tmp, 3000 if args.quick else 20000)
        note("training throughput (digits) ...")
        rows += training("digits", [f"train.epochs={epochs}"], reps, tmp, threads)
        note("training throughput (MNIST-shaped) ...")
        rows += training("mnist-shaped", [f"train.epochs={max(2, epochs // 4)}", "data.dataset=npz",
                                          f"data.path={npz}"], reps, tmp, threads)
        note("inference ...")
        rows += inference(reps, tmp, threads)
        note("start-up ...")
        rows += startup(5 if args.quick else 15)
        note("search workers ...")
        rows += search_workers(1 if args.quick else 3, tmp, 6 if args.quick else 12)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"dlx benchmarks ({'quick' if args.quick else 'full'}; {machine})")
    for column in ("comparison", "dlx", "reference", "ratio", "goal"):
        table.add_column(column, justify="left" if column in ("comparison", "goal") else "right")
    for row in rows:
        table.add_row(row["comparison"], f"{row['dlx']:,.3f}", f"{row['reference']:,.3f}", f"{row['ratio']:.2f}",
                      row["goal"])
    Console(width=160).print(table)
    (ROOT / "benchmarks" / "results.json").write_text(json.dumps({"machine": machine, "quick": args.quick,
                                                                  "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
