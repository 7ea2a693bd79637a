"""Start `dlx ARGS` as a real, separate process that can be SIGKILLed, without paying torch's import each time.

A multiprocessing fork server imports torch, optuna and the CLI once; every `start_dlx` forks a fresh child
from it (never from pytest, whose threads a fork would copy). The child is an ordinary process running
`cli.main.main()` with its own argv, working folder and log file; killing it is a real kill -9.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
PRELOAD = ["torch", "torch._dynamo", "optuna", "cli.main", "train.run", "search.api", "ensemble.api"]
_context = None


def _cli_child(argv: list[str], cwd: str, log: str, env: dict, patches: dict) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(env)
    for target, value in patches.items():  # "module.CONSTANT": value, e.g. a shorter wait for the test's sake
        module, name = target.rsplit(".", 1)
        setattr(importlib.import_module(module), name, value)
    os.chdir(cwd)
    sys.argv = ["dlx", *argv]
    from cli.main import main
    main()  # Typer ends with SystemExit(code), which becomes the process's exit code


def context():
    global _context
    if _context is None:
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


class Dlx:
    """One `dlx` process: `kill()` sends SIGKILL to it (and to the worker processes it started)."""

    def __init__(self, args, log: Path, cwd: Path = ROOT, env: dict | None = None, patches: dict | None = None):
        self.log = Path(log)
        self.started = time.monotonic()
        self.process = context().Process(target=_cli_child, args=([str(a) for a in args], str(cwd), str(log),
                                                                  {"COLUMNS": "200", **(env or {})},
                                                                  patches or {}))
        self.process.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> bool:
        """SIGKILL now; True if it was still running (a real kill), False if it had already ended."""
        if not self.process.is_alive():
            self.process.join()
            return False
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        os.kill(self.pid, signal.SIGKILL)
        self.process.join(30)
        # `dlx search --workers N` workers die with their parent (PR_SET_PDEATHSIG); wait until they have
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"worker processes outlived a killed dlx: {alive}"
        return self.process.exitcode == -signal.SIGKILL

    def wait(self, timeout: float = 300) -> int:
        self.process.join(timeout)
        if self.process.is_alive():
            stacks = self.stacks()
            self.kill()
            raise AssertionError(f"dlx did not finish within {timeout} s:\n{self.output()}\n{stacks}")
        return self.process.exitcode

    def stacks(self) -> str:
        """Where a hung dlx (and its workers) stand, if py-spy is installed: the clue a timeout needs."""
        spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if spy is None:
            return "(install py-spy to see the hung process's stacks)"
        dumps = subprocess.run([spy, "dump", "--pid", str(self.pid), "--subprocesses"], capture_output=True,
                               text=True, timeout=60)
        return dumps.stdout + dumps.stderr

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def run(args, log: Path, timeout: float = 300, **kwargs) -> tuple[int, str]:
    """Run `dlx ARGS` to completion in a forked process: (exit code, output)."""
    process = Dlx(args, log, **kwargs)
    code = process.wait(timeout)
    return code, process.output()
