"""Shared test helpers: run the real `dlx` CLI in its own process, and check its answer to bad input."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import forked

ROOT = Path(__file__).resolve().parents[1]
FORKABLE_ENV = {"COLUMNS"}  # what a forked child can take on after start-up; anything else needs a fresh interpreter
RUNS_BEFORE, RUNS_LEFT = pytest.StashKey[set](), pytest.StashKey[list]()


def pytest_configure(config):
    """Under pytest-xdist, each worker and the dlx processes it starts get an equal share of the cores as torch
    threads: with torch's default (a thread per core) in every worker, two workers on two cores oversubscribe the
    machine and torch runs several times slower. Serial runs keep torch's default."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(workers)))
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_sessionstart(session):
    session.config.stash[RUNS_BEFORE] = _checkout_runs()


def pytest_sessionfinish(session):
    """Tests write into tmp_path, never into the checkout's runs/ (a spec without output.dir, a train without
    --out): whatever the suite added there fails the session. Under pytest-xdist only the controller checks, once
    every worker is done."""
    if hasattr(session.config, "workerinput") or RUNS_BEFORE not in session.config.stash:
        return
    left = sorted(_checkout_runs() - session.config.stash[RUNS_BEFORE])
    if left:
        session.config.stash[RUNS_LEFT] = left
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    left = config.stash.get(RUNS_LEFT, None)
    if left:
        terminalreporter.write_line(f"FAILED: the tests left new entries in {ROOT / 'runs'}: {', '.join(left[:10])}"
                                    f"{' ...' if len(left) > 10 else ''}; give their commands --out (or output.dir) "
                                    "in tmp_path.", red=True)


def _checkout_runs() -> set[str]:
    folder = ROOT / "runs"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def run_dlx(*args, cwd=None, timeout=600, env=None, check=None) -> subprocess.CompletedProcess:
    """Run `dlx ARGS` in a separate process, as a user would, with stdout and stderr apart.

    The process is forked from a server that has torch imported already (tests/forked.py), which saves seconds a
    call; an `env` that must be seen at interpreter start (PYTHONPATH hooks) gets a fresh `python -m cli.main`."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    if set(env or {}) <= FORKABLE_ENV:
        result = forked.run_captured(args, cwd or ROOT, full_env, timeout)
    else:
        result = subprocess.run([sys.executable, "-m", "dlx", *map(str, args)], cwd=cwd or ROOT, env=full_env,
                                capture_output=True, text=True, timeout=timeout)
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def assert_user_error(result, *fragments: str) -> str:
    """dlx's answer to bad input: exit code 2, no traceback, and one message containing every fragment: dlx's own
    paragraph that starts with `error:` (besides the `run folder:` line `dlx train` prints as it starts), or, for a
    malformed command line, Click's usage error (`Usage: ...` then one `Error: ...`). `result` is what `run_dlx` or
    Typer's CliRunner returns. Returns the message on one line."""
    if isinstance(result, subprocess.CompletedProcess):
        code, output, exception = result.returncode, result.stderr + result.stdout, None
    else:
        code, output, exception = result.exit_code, result.output, result.exception
    assert code == 2, f"expected exit 2, got {code} ({exception!r}):\n{output}"
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if not line.startswith("run folder: ")]
    text = " ".join(" ".join(lines).split())
    if text.startswith("Usage: "):
        assert text.count("Error:") == 1 and "error:" not in text, f"not one usage error:\n{output}"
    else:
        assert text.startswith("error:") and text.count("error:") == 1, f"not one `error:` paragraph:\n{output}"
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in message:\n{output}"
    return text


@pytest.fixture
def write_yaml(tmp_path):
    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write
