"""System services some tests use for real (a PostgreSQL server, Chromium): outside CI a test whose service is
missing skips with the reason; in CI (`CI=true`, as .ci/run sets) it fails, so nothing skips there silently."""
from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_service(available: bool, reason: str) -> None:
    """Return when the service is there; otherwise skip with `reason`, or fail with it under CI=true."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{reason}; CI installs it (.ci/run), so this test must run there, not skip.", pytrace=False)
    pytest.skip(reason)
