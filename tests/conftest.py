"""Shared test helpers: run the real `dlx` CLI in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_dlx(*args, cwd=None, timeout=600, env=None, check=None) -> subprocess.CompletedProcess:
    """Run `python -m cli.main ARGS` as a user would run `dlx ARGS`."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    result = subprocess.run([sys.executable, "-m", "cli.main", *map(str, args)], cwd=cwd or ROOT, env=full_env,
                            capture_output=True, text=True, timeout=timeout)
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2, no traceback, one paragraph containing every fragment."""
    text = result.stderr + result.stdout
    assert result.returncode == 2, f"expected exit 2, got {result.returncode}\n{text}"
    assert "Traceback" not in text, text
    flat = " ".join(text.split())
    for fragment in fragments:
        assert fragment in flat, f"{fragment!r} not in message:\n{text}"
    return flat


@pytest.fixture
def write_yaml(tmp_path):
    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write
