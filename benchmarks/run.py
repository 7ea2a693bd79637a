"""dlx measured side by side with hand-written PyTorch (benchmarks/reference.py: the plain loop a user writes and
the best hand-written loop), in one process tree, in interleaved paired repetitions.

    python benchmarks/run.py [--quick] [--reps N]

Each row gives the median of the per-pair ratios with their range; a goal counts as met only when the lower
quartile of the ratios meets it. Writes benchmarks/results.json. Speed is only ever a ratio against a
reference measured in the same run.
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
DLX = [PY, "-m", "dlx"]
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


def paired(reps: int, **candidates) -> dict[str, list]:
    """Run each candidate once per repetition, in turn, so drifting machine load hits all of a repetition alike;
    ratios are then taken within a repetition (pairs), never between medians of different moments."""
    results = {name: [] for name in candidates}
    for _ in range(reps):
        for name, measure in candidates.items():
            results[name].append(measure())
    return results


def row(comparison: str, ours: list[float], theirs: list[float], goal: str) -> dict:
    """Per-pair ratios with their median, range and quartiles. A `>= g` goal counts as met only when the lower
    quartile meets it (three pairs in four at least as good); a `<= g` goal, the upper quartile."""
    ratios = sorted(o / t for o, t in zip(ours, theirs))
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
    met = None
    if goal[:2] in (">=", "<="):
        target = float(goal.split()[-1])
        met = q1 >= target if goal.startswith(">=") else q3 <= target
    elif goal.startswith("dlx <"):  # an absolute bound on dlx's own time: three runs in four under it
        met = statistics.quantiles(sorted(ours), n=4, method="inclusive")[2] < float(goal.split()[2])
    return {"comparison": comparison, "dlx": statistics.median(ours), "reference": statistics.median(theirs),
            "ratio": statistics.median(ratios), "min": ratios[0], "max": ratios[-1], "q1": q1, "q3": q3,
            "pairs": len(ratios), "goal": goal, "met": met}


def mnist_shaped(folder: Path, samples: int) -> Path:
    import numpy as np
    rng = np.random.default_rng(0)
    path = folder / "mnist_shaped.npz"
    x = rng.integers(0, 256, size=(samples, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=samples)
    np.savez(path, x_train=x, y_train=y, x_test=x[:1000], y_test=y[:1000])
    return path


def same_device(dlx_device: str, *references: dict) -> None:
    """Every reference ran where dlx ran: a GPU row must never compare dlx on the GPU with a loop on the CPU."""
    for reference in references:
        if reference["device"] != dlx_device.split(":")[0]:
            raise SystemExit(f"dlx ran on {dlx_device} but the {reference['loop']} loop on {reference['device']}")


def training(name: str, sets: list[str], reps: int, tmp: Path, threads: int) -> list[dict]:
    flags = sum((["--set", s] for s in sets + [f"device.threads={threads}", "train.scheduler.name=none"]), [])
    counter = iter(range(10_000))

    def dlx():
        data, rss = run_json(DLX + ["train", "configs/digits.yaml", "--out", str(tmp / f"{name}-{next(counter)}"),
                                    "--quiet", "--json"] + flags)
        return data, rss

    def loop(kind):
        return lambda: run_json([PY, "benchmarks/reference.py", "train", "--spec", "configs/digits.yaml", "--loop",
                                 kind, "--threads", str(threads)] + flags)

    runs = paired(reps, dlx=dlx, best=loop("best"), plain=loop("plain"))
    same_device(runs["dlx"][0][0]["device"], runs["best"][0][0], runs["plain"][0][0])
    speed = {k: [data["images_per_second"] for data, _ in v] for k, v in runs.items()}
    rss = {k: [r for _, r in v] for k, v in runs.items()}
    rows = [row(f"train {name}: vs best hand-written loop (images/s)", speed["dlx"], speed["best"], ">= 0.95"),
            row(f"train {name}: vs plain loop (images/s)", speed["dlx"], speed["plain"], ">= 1.2")]
    if name == "digits":
        rows.append(row("train digits: peak memory vs best loop (max RSS MB)", rss["dlx"], rss["best"], "<= 1.3"))
    return rows


def inference(reps: int, tmp: Path, threads: int) -> list[dict]:
    run_dir = tmp / "predict-run"
    run_json(DLX + ["train", "configs/digits.yaml", "--out", str(run_dir), "--quiet", "--json", "--set",
                    "train.epochs=1"])

    def dlx(path):
        return lambda: run_json([PY, "benchmarks/dlx_predict.py", str(run_dir), "--threads", str(threads),
                                 "--path", path])[0]

    def loop(kind):
        return lambda: run_json([PY, "benchmarks/reference.py", "predict", "--spec", "configs/digits.yaml",
                                 "--loop", kind, "--threads", str(threads)])[0]

    runs = paired(reps, evaluate=dlx("evaluate"), ensemble=dlx("ensemble"), best=loop("best"), plain=loop("plain"))
    same_device(runs["evaluate"][0]["device"], runs["best"][0], runs["plain"][0])
    speed = {k: [data["images_per_second"] for data in v] for k, v in runs.items()}
    return [row(f"inference, dlx {path}: vs {kind} loop (images/s)", speed[path], speed[kind], goal)
            for path in ("evaluate", "ensemble") for kind, goal in (("best", ">= 0.95"), ("plain", ">= 1.2"))]


def startup(reps: int) -> list[dict]:
    dlx_script = str(Path(PY).parent / "dlx")
    runs = paired(reps, help=lambda: wall([dlx_script, "--help"]),
                     config=lambda: wall([dlx_script, "config", "configs/digits.yaml"]),
                     torch=lambda: wall([PY, "-c", "import torch"]))
    return [row("start-up: dlx --help vs import torch (s)", runs["help"], runs["torch"], "dlx < 0.3 s"),
            row("start-up: dlx config digits.yaml vs import torch (s)", runs["config"], runs["torch"], "dlx < 0.5 s")]


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

    runs = paired(reps, one=lambda: per_hour(1), two=lambda: per_hour(2))
    return [row(f"search, {trials} trials, {what}: --workers 2 vs 1 (trials/hour)",
                [r[position] for r in runs["two"]], [r[position] for r in runs["one"]], goal)
            for position, (what, goal) in enumerate((("whole command", "(start-up included)"),
                                                     ("trial phase", ">= 1.6")))]


def trial_phase_seconds(db: Path) -> float:
    import sqlite3
    with contextlib.closing(sqlite3.connect(db)) as connection:
        first, last = connection.execute("SELECT MIN(datetime_start), MAX(datetime_complete) FROM trials").fetchone()
    parse = datetime.datetime.fromisoformat
    return (parse(last) - parse(first)).total_seconds()


def table(rows: list[dict], title: str):
    from rich.table import Table
    out = Table(title=title)
    for column in ("comparison", "dlx", "reference", "ratio (min-max)", "q1", "goal", "met"):
        out.add_column(column, justify="left" if column in ("comparison", "goal") else "right")
    for r in rows:
        met = {True: "yes", False: "NO", None: "-"}[r["met"]]
        out.add_row(r["comparison"], f"{r['dlx']:,.3f}", f"{r['reference']:,.3f}",
                    f"{r['ratio']:.2f} ({r['min']:.2f}-{r['max']:.2f})", f"{r['q1']:.2f}", r["goal"], met)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="7 paired repetitions, smaller data (under 5 minutes)")
    parser.add_argument("--reps", type=int, help="paired repetitions (default 7 quick, 9 full)")
    args = parser.parse_args()
    reps, epochs = (args.reps or 7, 3) if args.quick else (args.reps or 9, 10)
    threads = os.cpu_count() or 1
    rows = []

    def note(text):
        print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        npz = mnist_shaped(tmp, 2000 if args.quick else 20000)
        note("training throughput (digits) ...")
        rows += training("digits", [f"train.epochs={epochs}"], reps, tmp, threads)
        note("training throughput (MNIST-shaped) ...")
        rows += training("mnist-shaped", [f"train.epochs={max(1, epochs // 3)}", "data.dataset=npz",
                                          f"data.path={npz}"], reps, tmp, threads)
        note("inference ...")
        rows += inference(reps, tmp, threads)
        note("start-up ...")
        rows += startup(reps)
        if not args.quick:  # minutes per repetition: the quick mode keeps its 7 pairs elsewhere instead
            note("search workers ...")
            rows += search_workers(3, tmp, 12)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    from rich.console import Console
    Console(width=120).print(table(rows, f"dlx benchmarks ({'quick' if args.quick else 'full'}, {reps} paired "
                                         f"repetitions; {machine})"))
    (ROOT / "benchmarks" / "results.json").write_text(json.dumps({"machine": machine, "quick": args.quick,
                                                                  "reps": reps, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
