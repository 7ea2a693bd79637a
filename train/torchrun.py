"""torchrun (torch.distributed.run, the same arguments) as `dlx train --nproc` runs it (train.distributed.launch).

At Ctrl-C (SIGINT; SIGTERM, SIGHUP alike) torchrun passes the signal on to every rank, waits for them to stop, and
then ends with that signal's exit code (130 for Ctrl-C, as a single-process `dlx train`), without the traceback
of the SignalException it raises or its two warnings about it: rank 0 alone says the run was interrupted.

A rank that dies (killed, out of memory) makes torchrun stop the others; that is told in one paragraph naming the
rank and its signal or exit code, in place of torchrun's traceback and failure table. A rank that failed with an
error of its own has already said why, so only its exit code is passed on."""
from __future__ import annotations

import logging
import sys

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main

# "Received 2 death signal, shutting down workers", "Sending process ... closing signal SIGINT", and the failure
# table of a rank that died, told below in a line
for name in ("torch.distributed.elastic.agent.server.api", "torch.distributed.elastic.multiprocessing.api",
             "torch.distributed.elastic.multiprocessing.errors"):
    logging.getLogger(name).setLevel(logging.CRITICAL)


def exit_code(failed: ChildFailedError) -> int:
    """The first failed rank's exit code, as a shell gives it (128 + signal for a death by signal); a death is
    told here, since the rank itself could say nothing."""
    rank, failure = failed.get_first_failure()
    if failure.exitcode >= 0:
        return failure.exitcode or 1
    print(f"error: rank {rank} (pid {failure.pid}) died of {failure.signal_name()}, so torchrun stopped the other "
          "ranks. Nothing after its last finished epoch is lost: continue with `dlx train --resume RUN` (the run "
          "folder printed above); torchrun itself with --max-restarts N restarts the group on its own.",
          file=sys.stderr, flush=True)
    return 128 - failure.exitcode


try:
    main(sys.argv[1:])
except SignalException as stop:
    sys.exit(128 + stop.sigval)
except ChildFailedError as failed:
    sys.exit(exit_code(failed))
