"""Do `dlx train --nproc 2` runs end cleanly on a loaded machine? A rank that aborted at exit (`terminate called
without an active exception`, SIGABRT) made about one run in three exit 1 after it had finished.

    python benchmarks/ddp_exit_loop.py [--runs 30] [--busy 2] [--epochs 2]

Runs `dlx train configs/digits.yaml --nproc 2 --set train.epochs=E --out <tmp>` --runs times in a row, each in a
fresh temporary folder, beside --busy processes that spin on a CPU core each (the load that made ranks leave at
different times). A run is bad when it exits non-zero, prints `terminate called`, or prints a `Traceback`. Prints
one line per bad run, then one summary line; exits 1 if any run was bad.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = "while True: pass"


def one_run(epochs: int) -> tuple[int, str]:
    """(exit code, stdout + stderr) of one `dlx train --nproc 2` run into a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="dlx-ddp-exit-") as tmp:
        done = subprocess.run([sys.executable, "-m", "dlx", "train", str(ROOT / "configs" / "digits.yaml"),
                               "--nproc", "2", "--set", f"train.epochs={epochs}", "--out", str(Path(tmp) / "run")],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def problems(code: int, output: str) -> list[str]:
    """What was wrong with a run: its exit code, an abort at exit, a traceback; empty for a clean run."""
    found = [f"exit {code}"] if code else []
    return found + [text for text in ("terminate called", "Traceback") if text in output]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--busy", type=int, default=2, help="busy-looping processes beside the runs")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.busy)]
    bad, start = 0, time.monotonic()
    try:
        for index in range(1, args.runs + 1):
            code, output = one_run(args.epochs)
            found = problems(code, output)
            if found:
                bad += 1
                print(f"run {index}: {', '.join(found)}\n{output[-3000:]}", flush=True)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    print(f"{bad} of {args.runs} runs not clean (exit != 0, 'terminate called' or a Traceback) beside {args.busy} "
          f"busy processes, {time.monotonic() - start:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
