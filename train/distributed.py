"""One run on several processes, on torch.distributed as torchrun launches it (DistributedDataParallel).

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK in each process; dlx reads them and needs nothing else. Every rank
runs the same spec on the same seeded batch order and takes its share of each global batch; gradients are averaged
by DDP; epoch metrics are summed across ranks with exact counts. Only rank 0 writes the run folder, shows progress
and logs, so a run has one folder whatever the world size. Checkpoints hold the plain (unwrapped) model, so they
load at any world size and in every single-process command.

torchrun restarts a failed group with the same command line (`--max-restarts`); TORCHELASTIC_RESTART_COUNT tells a
restarted rank 0 to continue the run folder recorded under the same TORCHELASTIC_RUN_ID rather than start anew.

A rank ends through `exit_rank`, without tearing the interpreter down: gloo's threads outlive the process group
(see there)."""
from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist

from dlx.core.errors import DlxError
from dlx.core.reading import load_json

TIMEOUT = datetime.timedelta(minutes=30)  # a collective that waits this long means a rank is gone
_joined = False  # this process joined a process group, whose threads stay to the end (exit_rank)


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank `rank` of `size` processes (1 = an ordinary single-process run)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    restarts: int = 0  # how often torchrun has restarted the group (--max-restarts)
    run_id: Optional[str] = None  # torchrun's id of the whole job, the same across restarts

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of `n` items; shares differ by at most one and cover each item once."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)


SINGLE = World()


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise DlxError(f"the environment variable {name} should be a whole number (torchrun sets it), got "
                       f"{value!r}.") from None


def world_from_env() -> World:
    """The world torchrun describes in the environment; a process it did not launch is a world of one."""
    size = _int_env("WORLD_SIZE", 1)
    if size <= 1:
        return SINGLE
    return World(_int_env("RANK", 0), size, _int_env("LOCAL_RANK", 0), _int_env("TORCHELASTIC_RESTART_COUNT", 0),
                 os.environ.get("TORCHELASTIC_RUN_ID"))


def join(world: World, device_type: str) -> Optional[torch.device]:
    """Join the process group (NCCL for CUDA tensors, gloo for CPU ones); the CUDA device of this rank, if any."""
    global _joined
    if not world.distributed:
        return None
    _joined = True
    cuda = device_type in ("auto", "cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(world.local_rank % torch.cuda.device_count())
    if not dist.is_initialized():
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", store=_store(world), rank=world.rank,
                                world_size=world.size, timeout=TIMEOUT)
    return torch.device("cuda", torch.cuda.current_device()) if cuda else None


def _store(world: World):
    """The rendezvous store, with keys of their own for each restart of the group. torchrun's agent keeps one
    store across restarts, and a restarted group otherwise reads the addresses its dead predecessors published
    there (gloo: "connectFullMesh failed ... Connection refused"; pytorch/pytorch#167288)."""
    host, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), _int_env("MASTER_PORT", 29500)
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # torchrun's agent serves it: all are clients
    store = dist.TCPStore(host, port, world_size=world.size, is_master=not agent and world.main, timeout=TIMEOUT)
    return dist.PrefixStore(f"dlx/restart-{world.restarts}", store)


def leave(world: World, together: bool = False) -> None:
    """Leave the process group. `together` (this rank's run went well) first waits for every rank at a barrier,
    so that none goes while rank 0 still writes the run folder or another rank still uses the group; a rank that
    failed goes at once, as the others may be gone or waiting in a collective that it will never join."""
    if world.distributed and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def lost_peer(world: World, error: BaseException) -> Optional[DlxError]:
    """The one-line error for a collective that failed because another rank is gone (killed, out of memory), in
    place of the backend's traceback from inside backward() or an all-reduce; None for any other error."""
    if not world.distributed or not isinstance(error, RuntimeError):
        return None
    text = str(error)
    if not isinstance(error, dist.DistError) and not any(mark in text for mark in ("gloo", "Gloo", "NCCL")):
        return None
    reason = text.strip().splitlines()[0].split("] ", 1)[-1].split(". ")[0][:200] if text.strip() else type(error).__name__
    return DlxError(f"rank {world.rank} lost the other ranks of its process group ({reason}): another rank has "
                    "probably died, and this one stops too.")


def exit_rank(code) -> None:
    """End this process with exit code `code` (a SystemExit's) if it joined a process group: the atexit handlers
    run (multiprocessing stops data-loader workers, logging flushes), then os._exit skips the interpreter's
    teardown. Returns in any other process.

    gloo's worker threads outlive destroy_process_group: torch keeps references to the group, so they are never
    joined. One that is still letting go of a finished collective's tensors (the last `all_sum` of a run, on a
    loaded machine) needs the GIL for it; if the interpreter is being torn down by then, Python ends that thread
    inside a C++ destructor and the process aborts with `terminate called without an active exception` (SIGABRT,
    then torchrun's traceback and exit 1 after a finished run; pytorch/pytorch#179291). Without the teardown,
    those threads simply end with the process."""
    if not _joined:
        return
    if code is None or isinstance(code, int):
        code = code or 0
    else:  # what Python does with SystemExit("message")
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def share(world: World, value: Any) -> Any:
    """Rank 0's `value` on every rank (a small picklable object, sent once per run)."""
    if not world.distributed:
        return value
    box = [value if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(world: World, values: torch.Tensor) -> torch.Tensor:
    """`values` summed over all ranks (in float64, so image counts stay exact)."""
    if not world.distributed:
        return values
    total = values.detach().to(torch.float64).clone()
    dist.all_reduce(total)
    return total


def same_buffers(world: World, model: torch.nn.Module) -> None:
    """Rank 0's buffers (batch-norm statistics) on every rank, so every rank evaluates one and the same model."""
    if world.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def wrap(model: torch.nn.Module, world: World, sync_batch_norm: bool) -> torch.nn.Module:
    """The module that runs training batches: the model in DistributedDataParallel when there are several ranks.

    With `sync_batch_norm`, batch norm is converted in place (same parameter and buffer names, so checkpoints are
    unchanged); PyTorch's SyncBatchNorm runs on GPUs only, so on CPU it is refused."""
    if not world.distributed:
        return model
    device = next(model.parameters()).device
    if sync_batch_norm:
        if device.type != "cuda":
            raise DlxError("train.sync_batch_norm needs CUDA devices: PyTorch's SyncBatchNorm does not run on the CPU. "
                           "Turn it off; each process then normalises its own share of the batch.",
                           key="train.sync_batch_norm")
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def check_launchable(spec, nproc: int) -> None:
    """Refuse, before any process starts, what every rank would refuse: SyncBatchNorm without CUDA, more
    processes than GPUs on a CUDA run."""
    cuda = spec.device.type == "cuda" or (spec.device.type == "auto" and torch.cuda.is_available())
    if spec.train.sync_batch_norm and not cuda:
        raise DlxError("train.sync_batch_norm needs CUDA devices: PyTorch's SyncBatchNorm does not run on the CPU. "
                       "Turn it off; each process then normalises its own share of the batch.",
                       key="train.sync_batch_norm")
    if cuda and nproc > torch.cuda.device_count():
        raise DlxError(f"--nproc {nproc} asks for a process per GPU, but {torch.cuda.device_count()} are visible.",
                       key="--nproc")


def launch(nproc: int, argv: list[str]) -> None:
    """Become torchrun (train.torchrun) running `dlx <argv>` on `nproc` processes of this machine.

    This process is replaced rather than made a parent, so that a Ctrl-C reaches torchrun once, however it is
    sent: torchrun passes it on to every rank and waits for them to stop as a single-process run does (rank 0
    says where to resume). A parent killed torchrun at Ctrl-C (subprocess.call does), racing it as it stopped the
    ranks, which its death could leave training."""
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "dlx.train.torchrun", "--standalone",
                              f"--nproc-per-node={nproc}", "-m", "dlx", *argv])


def restarted_run(world: World, parent: Path) -> Optional[Path]:
    """The run folder a restarted group continues: the newest unfinished one under `parent` whose summary records
    this torchrun job's id."""
    if not world.restarts or not world.run_id or not parent.is_dir():
        return None
    found = []
    for summary in parent.glob("*/summary.json"):
        try:
            record = load_json(summary)  # bounded: another folder's summary.json may be a FIFO or a device
        except (OSError, DlxError):
            continue
        if isinstance(record, dict) and record.get("torchrun_run_id") == world.run_id \
                and record.get("status") != "finished":
            found.append((summary.stat().st_mtime, summary.parent))
    return max(found)[1] if found else None


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


POLL_SECONDS = 0.5


def train_in_processes(spec_dict: dict, run_dir: Path, nproc: int, on_epoch=None) -> dict:
    """Train `spec_dict` into `run_dir` on `nproc` processes (torchrun on this machine, as `dlx train --nproc`),
    calling `on_epoch(epoch, row)` here as each epoch's row appears, and return the run's summary. An exception
    from `on_epoch` (a search pruning the trial) stops the whole process group and propagates. Used by searches
    whose trials each take several devices (`nproc:` in the space). The test split is left alone."""
    from dlx.core.files import atomic_write_text
    from dlx.experiment.yamlio import dump_yaml
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    spec_file = run_dir.parent / f".{run_dir.name}.spec.yaml"
    atomic_write_text(spec_file, dump_yaml(spec_dict))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "dlx",
               "train", str(spec_file), "--out", str(run_dir), "--quiet", "--no-test"]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1)
                                                                                            // nproc))}
    errors = tempfile.TemporaryFile("w+")  # not a pipe: torchrun's output could fill one and block it
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors, text=True,
                               start_new_session=True)  # a group: a pruned trial stops every rank at once
    seen = 0
    try:
        while True:
            finished = process.poll() is not None
            seen = _report_rows(run_dir, seen, on_epoch)
            if finished:
                break
            time.sleep(POLL_SECONDS)
    except BaseException:
        _stop_group(process)
        raise
    finally:
        spec_file.unlink(missing_ok=True)
    errors.seek(0)
    output, _ = errors.read(), errors.close()
    if process.returncode != 0:
        lines = [line for line in output.splitlines() if line.startswith("error:")]
        raise DlxError(lines[0].removeprefix("error: ") if lines else f"the {nproc}-process run stopped with exit "
                       f"code {process.returncode}; its run folder has what it wrote.", file=run_dir)
    return json.loads((run_dir / "summary.json").read_text())


def _report_rows(run_dir: Path, seen: int, on_epoch) -> int:
    """Call `on_epoch` for the rows of metrics.jsonl after the first `seen`; the new count."""
    path = run_dir / "metrics.jsonl"
    if on_epoch is None or not path.exists():
        return seen
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows[seen:]:
        on_epoch(row["epoch"], row)
    return max(seen, len(rows))


def _stop_group(process: subprocess.Popen) -> None:
    import signal
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
