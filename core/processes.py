"""Whether a process still runs, for records that name the pid that wrote them (a search trial, a run's summary)."""
from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True unless no process `pid` exists on this host; a process of another user counts as alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
