"""One command that checks dlx's CUDA paths on one GPU and prints one table (sized for < 8 minutes on an H100).

    python benchmarks/gpu.py [--out FILE]            # on a CUDA machine
    python benchmarks/gpu.py --cpu-dry-run           # the same rows on the CPU with tiny sizes (tests run it)

Rows, each with the seconds it took:
- `pytest -m gpu`: the CUDA-path tests (tests/gpu/), counted as passed / skipped / failed.
- train throughput: dlx's images/s against the best hand-written loop of benchmarks/reference.py (same spec,
  model, data, batch, optimizer and precision), in paired repetitions, for configs/cifar10_resnet.yaml and the
  airbench94-style spec benchmarks/specs/airbench94_like.yaml; goal >= 0.95.
- peak memory of the same runs, dlx against the loop: torch.cuda.max_memory_allocated (max RSS on the CPU).
- airbench-style epoch time with torch.compile off and on, against airbench94's published 3.09 s for its whole
  94% run on one A100 (9.9 epochs): how far a YAML spec is from a hand-tuned script.
- a search with two workers sharing the GPU (`--devices cuda:0 --workers 2`): every trial must finish there.

The data is CIFAR-10-shaped random uint8 written as CIFAR-10 python pickles in a temporary folder (nothing is
downloaded). Writes the rows as JSON (--out, default benchmarks/gpu.json; the dry run: gpu_dry_run.json).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import DLX, ENV, PY, paired, row, run_json, same_device

SPECS = {"resnet": "configs/cifar10_resnet.yaml", "airbench": "benchmarks/specs/airbench94_like.yaml"}
AIRBENCH_SECONDS, AIRBENCH_EPOCHS = 3.09, 9.9  # airbench94 on one A100, as its README publishes
STEP_TIMEOUT = 300  # seconds: a hung step (a stuck worker) becomes a failed row, and the other rows still run


@dataclass
class Sizes:
    """How much each row does: the GPU sizes fit the whole command in under 8 minutes on one H100."""

    images: int                    # training + validation images (CIFAR-10 has 50,000)
    test_images: int
    reps: int                      # paired repetitions of the throughput rows
    epochs: int                    # epochs of each throughput run
    compile_epochs: int            # epochs of each compile on/off run (the first one holds the compilation)
    search_trials: int
    device: str                    # what `--devices` names for the search
    model: dict = field(default_factory=dict)   # spec -> overrides that shrink its model
    batch: list = field(default_factory=list)   # overrides of the batch size (the dry run's tiny data)
    compile_backend: str = "inductor"   # the dry run traces with aot_eager: inductor's C++ build takes ~100 s
    threads: int = 0                    # torch CPU threads in each process (0: all cores)


GPU = Sizes(images=50_000, test_images=1_000, reps=3, epochs=2, compile_epochs=4, search_trials=4, device="cuda:0")
DRY = Sizes(images=500, test_images=100, reps=1, epochs=1, compile_epochs=2, search_trials=2, device="cpu",
            model={"resnet": ["model.vars.width=4"], "airbench": ["model.vars.w1=8", "model.vars.w2=8",
                                                                  "model.vars.w3=8"]},
            batch=["train.batch_size=100"], compile_backend="aot_eager", threads=1)


def write_cifar_shaped(root: Path, images: int, test_images: int, seed: int = 0) -> Path:
    """Random uint8 images and labels as the five CIFAR-10 python training batches, the test batch and the
    meta file, under root/cifar-10-batches-py (what `dataset: cifar10` reads)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def batch(name: str, count: int) -> None:
        data = rng.integers(0, 256, size=(count, 3 * 32 * 32), dtype=np.uint8)
        labels = [int(v) for v in np.arange(count) % 10]
        with (folder / name).open("wb") as handle:
            pickle.dump({"data": data, "labels": labels}, handle)

    for index in range(1, 6):
        batch(f"data_batch_{index}", images // 5)
    batch("test_batch", test_images)
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, handle)
    return root


def flags(overrides: list[str]) -> list[str]:
    return [part for item in overrides for part in ("--set", item)]


def child(kind: str, spec: str, overrides: list[str], out: Path, threads: int, backend: str = "inductor") -> dict:
    """Run one measured training (dlx or the best loop) in its own process: its JSON, with peak memory."""
    data, _ = run_json([PY, __file__, "--child", kind, "--spec", spec, "--run-out", str(out), "--threads",
                        str(threads), "--compile-backend", backend] + flags(overrides))
    return data


def run_child(args) -> dict:
    """The --child side: train once, in this process, so that its peak GPU memory is this process's."""
    import torch
    if args.compile_backend != "inductor":  # train.compile calls torch.compile(model): give it this backend
        torch.compile = functools.partial(torch.compile, backend=args.compile_backend)
    if args.child == "dlx":
        from dlx.archs.check import load_spec
        from dlx.train import train
        torch.set_num_threads(args.threads)
        result = train(load_spec(args.spec, args.set), out=args.run_out, quiet=True, test=False)
        lines = (Path(args.run_out) / "metrics.jsonl").read_text().splitlines()
        data = {"device": result.summary["device"], "images_per_second": result.summary["images_per_second"],
                "epochs": [json.loads(line) for line in lines]}
    else:
        import reference
        data = reference.train(argparse.Namespace(spec=args.spec, set=args.set, threads=args.threads, loop="best"))
    cuda = data["device"].startswith("cuda")
    data["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20 if cuda \
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    data["memory"] = "peak GPU" if cuda else "max RSS"
    return data


def gpu_tests(tmp: Path) -> list[dict]:
    """`pytest -m gpu` in a subprocess, counted from its JUnit XML (on a machine without CUDA, all skip)."""
    report = tmp / "gpu-tests.xml"
    started = time.perf_counter()
    done = subprocess.run([PY, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-p", "no:cacheprovider", "-rs",
                           f"--junitxml={report}"], cwd=ROOT, env=ENV, capture_output=True, text=True, check=False,
                          timeout=STEP_TIMEOUT)
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "skipped", "failures", "errors")}
    counts["passed"] = counts["tests"] - counts["skipped"] - counts["failures"] - counts["errors"]
    failed = counts["failures"] + counts["errors"]
    return [{"comparison": "pytest -m gpu", "text": f"{counts['passed']} passed, {counts['skipped']} skipped, "
             f"{failed} failed", "goal": "0 failed", "met": failed == 0 and done.returncode in (0, 5),
             "counts": counts, "exit_code": done.returncode, "seconds": time.perf_counter() - started,
             "output_tail": done.stdout[-3000:]}]


def throughput(name: str, sizes: Sizes, tmp: Path, threads: int) -> list[dict]:
    """dlx against the best hand-written loop on one spec, with the tricks and settings both share: no
    augmentation or schedule (the loop has neither), Adam, plain cross-entropy, no gradient clipping."""
    overrides = [f"data.root={tmp}", f"train.epochs={sizes.epochs}", "data.augment.random_crop_padding=0",
                 "data.augment.horizontal_flip=false", "train.scheduler.name=none", "train.optimizer.name=adam",
                 "train.optimizer.lr=0.001", "train.optimizer.weight_decay=0.0", "train.label_smoothing=0.0",
                 "train.grad_clip=null", *sizes.model.get(name, []), *sizes.batch]
    counter = iter(range(10_000))
    started = time.perf_counter()
    runs = paired(sizes.reps, dlx=lambda: child("dlx", SPECS[name], overrides, tmp / f"{name}-{next(counter)}",
                                                threads),
                  best=lambda: child("best", SPECS[name], overrides, tmp / "unused", threads))
    same_device(runs["dlx"][0]["device"], runs["best"][0])
    seconds = time.perf_counter() - started
    speed = row(f"train img/s, {name}, vs best loop", [r["images_per_second"] for r in runs["dlx"]],
                [r["images_per_second"] for r in runs["best"]], ">= 0.95")
    memory = row(f"{runs['dlx'][0]['memory']} MB, {name}, vs best loop",
                 [r["peak_mb"] for r in runs["dlx"]], [r["peak_mb"] for r in runs["best"]], "<= 1.3")
    for result in (speed, memory):  # the two rows share the runs, and their time
        result.update(spec=SPECS[name], device=runs["dlx"][0]["device"], seconds=seconds / 2)
    return [speed, memory]


def compile_epochs(sizes: Sizes, tmp: Path, threads: int) -> list[dict]:
    """The airbench-style spec as written (augmentation, batch 1024, SGD), torch.compile off then on: the
    steady epoch time (median after the first epoch), per 50,000 images, against airbench94's 3.09 s / 9.9."""
    rows = []
    per_epoch = AIRBENCH_SECONDS / AIRBENCH_EPOCHS
    for compiled in (False, True):
        started = time.perf_counter()
        overrides = [f"data.root={tmp}", f"train.epochs={sizes.compile_epochs}",
                     f"train.compile={str(compiled).lower()}", *sizes.model.get("airbench", []), *sizes.batch]
        data = child("dlx", SPECS["airbench"], overrides, tmp / f"compile-{compiled}", threads,
                     sizes.compile_backend)
        epochs = [50_000 / e["images_per_second"] for e in data["epochs"]]
        steady = statistics.median(epochs[1:])
        first = data["epochs"][0]["seconds"]
        rows.append({"comparison": f"airbench epoch s per 50k images, compile {'on' if compiled else 'off'} "
                                   f"(1st epoch {first:.1f} s)",
                     "dlx": steady, "reference": per_epoch, "ratio": steady / per_epoch, "goal": "A100 ref.",
                     "met": None, "device": data["device"], "first_epoch_seconds": first,
                     "epoch_seconds_per_50k": epochs, "projected_run_seconds": steady * AIRBENCH_EPOCHS,
                     "backend": sizes.compile_backend if compiled else None,
                     "seconds": time.perf_counter() - started})
    rows[1]["compile_speedup"] = rows[0]["dlx"] / rows[1]["dlx"]
    return rows


def search_row(sizes: Sizes, tmp: Path) -> list[dict]:
    """`dlx search --devices D --workers 2`: two trial processes sharing one device; each trial's summary.json
    must name that device."""
    shrink = [item.split("=", 1) for item in sizes.model.get("airbench", []) + sizes.batch]
    overrides = {"data.root": str(tmp), "train.epochs": 1, **{key: int(value) for key, value in shrink}}
    space = tmp / "gpu-search.yaml"
    space.write_text(f"base: {ROOT / SPECS['airbench']}\noverrides: {json.dumps(overrides)}\nsampler: random\n"
                     "pruner: none\n"
                     "params:\n  train.optimizer.lr: {float: [0.05, 0.5], log: true}\n")
    out = tmp / "gpu-search"
    started = time.perf_counter()
    subprocess.run(DLX + ["search", str(space), "--out", str(out), "--workers", "2", "--devices", sizes.device,
                          "--trials", str(sizes.search_trials), "--quiet"], cwd=ROOT, env=ENV, check=True,
                   capture_output=True, text=True, timeout=STEP_TIMEOUT)
    seconds = time.perf_counter() - started
    summaries = [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*/summary.json"))]
    devices = sorted({s.get("device", "?") for s in summaries})
    finished = sum(s.get("status") == "finished" for s in summaries)
    expected = sizes.device.split(":")[0]
    return [{"comparison": f"search, 2 workers on {sizes.device}",
             "text": f"{finished} trials of {sizes.search_trials} finished on {','.join(devices) or '-'}",
             "goal": "all there",
             "met": finished >= sizes.search_trials and all(d.startswith(expected) for d in devices),
             "trials_per_hour": finished * 3600 / seconds, "devices": devices, "seconds": seconds}]


def cell(value) -> str:
    return "-" if value is None else f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def table(rows: list[dict], title: str):
    """One rich table that stays within 80 columns: the check column wraps, the figures don't."""
    from rich import box
    from rich.table import Table
    out = Table(title=title, box=box.SIMPLE_HEAD)
    out.add_column("check", overflow="fold", ratio=1)
    for column in ("dlx", "ref.", "ratio", "goal", "met", "s"):
        out.add_column(column, justify="left" if column == "goal" else "right", no_wrap=True)
    for r in rows:
        check = f"{r['comparison']}: {r['text']}" if "text" in r else r["comparison"]
        met = {True: "yes", False: "NO", None: "-"}[r["met"]]
        out.add_row(check, cell(r.get("dlx")), cell(r.get("reference")), cell(r.get("ratio")), r["goal"], met,
                    f"{r['seconds']:.0f}")
    return out


def guarded(label: str, step) -> list[dict]:
    """A step's rows, or one failed row saying why: one broken path must not hide the others' figures."""
    started = time.perf_counter()
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 - reported in the table and the JSON, and the exit code is 1
        detail = getattr(exc, "stderr", None) or str(exc)
        return [{"comparison": label, "text": f"error: {str(exc).splitlines()[0][:120]}", "goal": "runs",
                 "met": False, "error": str(detail)[-3000:], "seconds": time.perf_counter() - started}]


STEPS = ("tests", "throughput", "compile", "search")


def measure(sizes: Sizes, tmp: Path, only: tuple = STEPS) -> list[dict]:
    """The rows of the steps in `only` (all by default), each step timed and guarded."""
    threads = sizes.threads or os.cpu_count() or 1
    write_cifar_shaped(tmp, sizes.images, sizes.test_images)
    steps = [("tests", "pytest -m gpu", lambda: gpu_tests(tmp)),
             *[("throughput", f"throughput {name}", lambda name=name: throughput(name, sizes, tmp, threads))
               for name in SPECS],
             ("compile", "airbench-style compile on/off", lambda: compile_epochs(sizes, tmp, threads)),
             ("search", "search with two workers", lambda: search_row(sizes, tmp))]
    rows = []
    for label, step in ((label, step) for kind, label, step in steps if kind in only):
        print(f"{label} ...", file=sys.stderr, flush=True)
        added = guarded(label, step)
        rows += added
        print(f"  {label}: {sum(r['seconds'] for r in added):.0f} s", file=sys.stderr, flush=True)
    return rows


def machine(dry: bool) -> str:
    import torch
    if not dry:
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"CPU dry run: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-dry-run", action="store_true", help="every row on the CPU with tiny sizes (~1 min)")
    parser.add_argument("--out", type=Path, help="JSON file (default: benchmarks/gpu.json, or gpu_dry_run.json)")
    parser.add_argument("--only", default=",".join(STEPS), help=f"a rerun of some steps: {','.join(STEPS)}")
    parser.add_argument("--child", choices=["dlx", "best"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--run-out", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help=argparse.SUPPRESS)
    parser.add_argument("--compile-backend", default="inductor", help=argparse.SUPPRESS)
    args = parser.parse_args()
    only = tuple(step.strip() for step in args.only.split(","))
    if not set(only) <= set(STEPS):
        parser.error(f"--only takes {','.join(STEPS)}; got {args.only}")
    if args.child:
        print(json.dumps(run_child(args)))
        return
    import torch
    dry = args.cpu_dry_run
    if not dry and not torch.cuda.is_available():
        raise SystemExit("no CUDA device is visible; run with --cpu-dry-run to check the script on the CPU")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dlx-gpu-") as folder:
        rows = measure(DRY if dry else GPU, Path(folder), only)
    total = time.perf_counter() - started
    title = f"dlx GPU check ({machine(dry)}); {total:.0f} s in all"
    from rich.console import Console
    Console(width=80).print(table(rows, title))
    out = args.out or ROOT / "benchmarks" / ("gpu_dry_run.json" if dry else "gpu.json")
    from dlx.core.files import atomic_write_json
    atomic_write_json(out, {"machine": machine(dry), "dry_run": dry, "sizes": asdict(DRY if dry else GPU),
                            "total_seconds": total, "rows": rows})
    print(f"written: {out}", file=sys.stderr)
    broken = [r["comparison"] for r in rows if "error" in r or r.get("counts", {}).get("failures")]
    if broken:
        raise SystemExit(f"broken: {', '.join(broken)}")


if __name__ == "__main__":
    main()
