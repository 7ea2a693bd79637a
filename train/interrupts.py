"""SIGTERM as Ctrl-C: a scheduler (SLURM, Kubernetes, torchrun passing on a signal) stopping a job ends it the way
Ctrl-C does, with the run recorded as interrupted and resumable, instead of a bare death mid-epoch."""
from __future__ import annotations

import contextlib
import signal
import threading


def interrupt(signum, frame) -> None:
    """Stop as Ctrl-C does: through the SIGINT handler in force, which holds it while a checkpoint is written
    (train.loop.deferred_sigint). Installed for SIGINT itself (a search worker), it acts only once: Ctrl-C reaches
    the workers with their parent, whose terminate() then follows, and must not break off a trial's re-queueing."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not interrupt:
        handler(signal.SIGINT, frame)
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_interrupts():
    """While the block runs, SIGTERM raises KeyboardInterrupt as Ctrl-C does (see `interrupt`); forked processes
    inherit it. A no-op outside the main thread, where no signal handler can be set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
