"""torchrun (torch.distributed.run, the same arguments) as `dlx train --nproc` runs it (train.distributed.launch).

At Ctrl-C (SIGINT; SIGTERM, SIGHUP alike) torchrun passes the signal on to every rank, waits for them to stop, and
then ends with that signal's exit code (130 for Ctrl-C, as a single-process `dlx train`), without the traceback
of the SignalException it raises or its two warnings about it: rank 0 alone says the run was interrupted."""
from __future__ import annotations

import logging
import sys

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.run import main

# "Received 2 death signal, shutting down workers", "Sending process ... closing signal SIGINT"
for name in ("torch.distributed.elastic.agent.server.api", "torch.distributed.elastic.multiprocessing.api"):
    logging.getLogger(name).setLevel(logging.ERROR)

try:
    main(sys.argv[1:])
except SignalException as stop:
    sys.exit(128 + stop.sigval)
