"""Start `dlx ARGS` as a real, separate process without paying torch's import each time.

A multiprocessing fork server imports the heavy third-party packages (torch, optuna, numpy, ...) once; each `Dlx`
forks a fresh child from it (never from pytest, whose threads a fork would copy). The child sets its own
environment, umask, working folder and argv, imports dlx's own modules itself (so their import-time code runs in
the child, as in `python -m cli.main`) and runs `cli.main.main()`, its stdout and stderr going to files; its exit
code is the process's, and killing it is a real kill -9. `tests/conftest.py:run_dlx` runs through it too.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
# Third-party only: dlx's modules are imported in each child, after its environment is set.
PRELOAD = ["torch", "torch._dynamo", "numpy", "optuna", "sqlalchemy", "yaml", "pydantic", "typer", "rich.console",
           "PIL.Image"]
_context = None


def _cli_child(argv: list[str], cwd: str, out: str, err: str, env: dict, patches: dict, umask: int) -> None:
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, fd)
        os.close(target)
    os.environ.clear()
    os.environ.update(env)
    os.umask(umask)
    for target, value in patches.items():  # "module.CONSTANT": value, e.g. a shorter wait for the test's sake
        module, name = target.rsplit(".", 1)
        setattr(importlib.import_module(module), name, value)
    os.chdir(cwd)
    sys.argv = ["dlx", *argv]
    from dlx.cli.main import main
    main()  # Typer ends with SystemExit(code), which becomes the process's exit code


def context():
    global _context
    if _context is None:
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class Dlx:
    """One `dlx` process: `kill()` sends SIGKILL to it (and to the worker processes it started).
    Its stdout and stderr both go to `log`, unless `err` names a separate file for stderr."""

    def __init__(self, args, log: Path, cwd: Path = ROOT, env: dict | None = None, patches: dict | None = None,
                 err: Path | None = None, umask: int | None = None):
        self.log = Path(log)
        self.started = time.monotonic()
        environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
        self.process = context().Process(target=_cli_child, args=([str(a) for a in args], str(cwd), str(log),
                                                                  str(err or log), environment, patches or {},
                                                                  current_umask() if umask is None else umask))
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
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended (and was reaped) between the check above and now
            self.process.join()
            return False
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


def run_captured(args, cwd: Path = ROOT, env: dict | None = None, timeout: float = 600,
                 umask: int | None = None) -> subprocess.CompletedProcess:
    """Run `dlx ARGS` to completion in a forked process, stdout and stderr apart, as `subprocess.run` reports it."""
    with tempfile.TemporaryDirectory(prefix="dlx-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        process = Dlx(args, out, cwd=cwd, env=env, err=err, umask=umask)
        code = process.wait(timeout)
        text = [path.read_text() if path.exists() else "" for path in (out, err)]
        return subprocess.CompletedProcess(["dlx", *map(str, args)], code, *text)
