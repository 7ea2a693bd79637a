"""`dlx ensemble --device`: where the members predict. Predictions stay float32 on any device (no autocast), so
the prediction cache, keyed by the checkpoint alone, holds the same numbers whichever device filled it (up to
rounding: TF32 convolutions on CUDA)."""
from __future__ import annotations

from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module

torch = lazy_module("torch")

DEVICE_HELP = "auto (a CUDA GPU if one is visible, else the CPU), cpu, cuda or cuda:N"


def prediction_device(name: str = "auto"):
    """The torch.device `name` asks for; a GPU this machine lacks, or an unknown name, is refused."""
    text = name.strip().lower()
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if text == "auto":
        return torch.device("cuda" if visible else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    index = text.removeprefix("cuda").removeprefix(":")
    if not text.startswith("cuda") or (index and not index.isdigit()) or text == "cuda:":
        raise DlxError(f"--device must be {DEVICE_HELP}; got {name!r}.", key="--device")
    if int(index or 0) >= visible:
        where = f"cuda:0 to cuda:{visible - 1}" if visible else "no CUDA GPU is visible; use auto or cpu"
        raise DlxError(f"--device {name} names a GPU this machine lacks ({where}).", key="--device")
    return torch.device(text)
