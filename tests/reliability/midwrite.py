"""Make a kill or a Ctrl-C land at one exact moment inside a forked `dlx` (`tests.forked.Dlx(patches=...)`).

A kill at a random moment rarely lands inside a write of a few milliseconds, so a test that relies on chance can
pass with the atomic writes removed. These hooks put it there on purpose:

- `kill_writing("ensemble.yaml")`: the child SIGKILLs itself half-way through the first write into that file,
  whether it goes to the atomic-write temporary (`.ensemble.yaml.<random>.tmp`) or, written in place, to the file
  itself. `"last.pt@2"`: the second time a file of that name is opened for writing.
- `interrupt_after_last_checkpoint()`: the child sends itself SIGINT (Ctrl-C) right after last.pt of epoch
  `INTERRUPT_EPOCH` is in place, before the metrics and the summary of that epoch are written.

Each hook is a function of this module; the child imports it when it unpickles `patches`, before any patch is
applied, so `_open` below is the real `io.open`."""
from __future__ import annotations

import io
import os
import signal
from pathlib import Path

_open = io.open
TARGET = ""  # "name" or "name@n", set in the child through `patches`
INTERRUPT_EPOCH = 2
_opened = [0]


def kill_writing(target: str) -> dict:
    """`patches` for Dlx: die half-way through writing `target` ("name" or "name@n")."""
    return {f"{__name__}.TARGET": target, "io.open": open_for_test, "builtins.open": open_for_test}


def interrupt_after_last_checkpoint() -> dict:
    """`patches` for Dlx: Ctrl-C right after last.pt of epoch INTERRUPT_EPOCH is written."""
    return {"dlx.train.run.save_checkpoint": save_then_interrupt}


def target_name(path: str) -> str:
    """The file a write is for: `.ensemble.yaml.k2j4_x.tmp` (atomic_write's temporary) -> `ensemble.yaml`."""
    name = os.path.basename(path)
    if name.startswith(".") and name.endswith(".tmp"):
        return name[1:-len(".tmp")].rsplit(".", 1)[0]
    return name


class _KillingFile:
    """A file whose first write writes half its bytes, makes them durable, then SIGKILLs the process."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        data = data if isinstance(data, str) else bytes(data)
        self._handle.write(data[:len(data) // 2])
        self._handle.flush()
        os.fsync(self._handle.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)

    def __iter__(self):
        return iter(self._handle)

    def __getattr__(self, name):
        return getattr(self._handle, name)


def open_for_test(file, mode="r", *args, **kwargs):
    """io.open (and so builtins.open, os.fdopen, Path.open, zipfile) that arms the kill on the TARGET write."""
    handle = _open(file, mode, *args, **kwargs)
    if not TARGET or not any(flag in mode for flag in "wax+"):
        return handle
    name, _, nth = TARGET.partition("@")
    path = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.fspath(file)
    if target_name(str(path)) != name:
        return handle
    _opened[0] += 1
    return _KillingFile(handle) if _opened[0] == int(nth or 1) else handle


def save_then_interrupt(path, state: dict) -> None:
    """train.checkpoint.save_checkpoint, then Ctrl-C once last.pt of epoch INTERRUPT_EPOCH is in place."""
    from dlx.train.checkpoint import save_checkpoint
    save_checkpoint(path, state)
    if Path(path).name == "last.pt" and state.get("epoch") == INTERRUPT_EPOCH:
        os.kill(os.getpid(), signal.SIGINT)
