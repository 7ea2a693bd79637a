"""`dlx search --devices cuda:0,cuda:1`: one worker process per listed device (times --workers), each seeing only
its own GPU through CUDA_VISIBLE_DEVICES, so a trial's `device: auto` lands on it; `cpu` hides every GPU. No queue
of dlx's own: the workers draw trials from the study as any worker does."""
from __future__ import annotations

from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module

torch = lazy_module("torch")


def parse_devices(text: str) -> list[str]:
    """`cuda:0,cuda:1` (or `0,1`), `cpu`, or a mix, as canonical names; a GPU this machine lacks is refused."""
    devices = []
    for item in (part.strip().lower() for part in text.split(",")):
        name = f"cuda:{item}" if item.isdigit() else item
        index = name.removeprefix("cuda:")
        if name != "cpu" and not (name.startswith("cuda:") and index.isdigit()):
            raise DlxError(f"each device is cpu, cuda:N or N (a GPU index), got {item!r} in {text!r}.",
                           key="--devices")
        devices.append(name)
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = [d for d in devices if d != "cpu" and int(d.removeprefix("cuda:")) >= visible]
    if missing:
        raise DlxError(f"--devices names {', '.join(missing)}, but this machine has {visible} visible CUDA "
                       f"device(s){f' (cuda:0 to cuda:{visible - 1})' if visible else ''}.", key="--devices")
    return devices


def assign(devices: list[str], workers: int, nproc: int = 1) -> list[str]:
    """The device(s) of each worker process: `workers` per listed device, or per group of `nproc` GPUs when each
    trial trains on `nproc` processes (`cuda:0,cuda:1`); a `cpu` worker runs its `nproc` processes on the CPU."""
    if nproc > 1 and any(device != "cpu" for device in devices):
        if "cpu" in devices or len(devices) % nproc:
            raise DlxError(f"each trial takes {nproc} GPUs (the space's nproc), so --devices must list GPUs only, "
                           f"a multiple of {nproc} of them; got {','.join(devices)}.", key="--devices")
        devices = [",".join(devices[i:i + nproc]) for i in range(0, len(devices), nproc)]
    return [device for device in devices for _ in range(workers)]


def device_env(device: str) -> dict[str, str]:
    """The environment a worker on `device` (or `cuda:0,cuda:1`) runs with: only its GPUs visible (from cuda:0
    on), or none for `cpu`."""
    visible = "" if device == "cpu" else ",".join(d.removeprefix("cuda:") for d in device.split(","))
    return {"CUDA_VISIBLE_DEVICES": visible}
