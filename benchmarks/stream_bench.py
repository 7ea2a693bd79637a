"""Streamed image folders (data.cache: stream) against torchvision's ImageFolder + DataLoader, and against dlx's
in-memory path: images per second through the data pipeline, and each one's peak memory.

    python benchmarks/stream_bench.py [--images 12000] [--side 64] [--workers 2] [--epochs 3] [--rounds 3]
                                      [--out FILE.json]

Every variant reads the same JPEG folder, in its own fresh process, with the same worker count, batch size and
transform (decode with PIL to RGB uint8, then per batch on the training device: (x / 255 - mean) / std):
- `dlx_stream`: train.data.stream.StreamData (order.py's permutation, persistent workers, pinned memory on CUDA);
- `torchvision`: ImageFolder(transform=PILToTensor()) + DataLoader(shuffle=True, the same workers, persistent,
  pinned memory on CUDA), normalised the same way;
- `dlx_memory`: train.data.tensors.TensorData after load_splits decoded the folder into memory (its decoding time
  is reported apart: it is paid once a process).
`per_item_in_one_process` times the work of a worker (decode, to tensor, collate) for both in one process.
Images per second are over the epochs after the first (which starts the workers), the median of --rounds fresh
processes per mode, run interleaved; the ratio dlx_stream / torchvision is the figure the goal (>= 1.0) refers
to. Peak RSS is the process's growth (VmHWM, reset after imports) over loading and all epochs, workers not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BATCH = 128
MODES = ("torchvision", "dlx_stream", "dlx_memory")


def kib(field: str) -> int:
    return int(re.search(field + r":\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def write_folder(root: Path, images: int, side: int, classes: int = 10) -> None:
    """JPEG photos stand-ins: smooth class-coloured gradients with noise, quality 90."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    for i in range(images):
        label = i % classes
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        base = np.stack([ramp[None, :] * 255 * ((label + c) % 3) / 2 + ramp[:, None] * 40 * c for c in range(3)], -1)
        pixels = np.clip(base + rng.normal(0, 12, (side, side, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=90)


def _epochs(batches, epochs: int, device) -> tuple[float, int, float]:
    """(first epoch seconds, images per epoch, images/s over the later epochs) of `batches(epoch)`."""
    import torch
    times, count = [], 0
    for epoch in range(1, epochs + 1):
        start, count = time.perf_counter(), 0
        for x in batches(epoch):
            count += len(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    later = sum(times[1:]) or times[0]
    return times[0], count, count * max(1, len(times) - 1) / later


def child(mode: str, folder: str, workers: int, epochs: int) -> dict:
    import torch
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import PILToTensor

    from dlx.experiment.schema import DataSpec
    from dlx.train.data import load_splits
    from dlx.train.data.stream import StreamData
    from dlx.train.data.tensors import TensorData
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(1)
    Path("/proc/self/clear_refs").write_text("5")
    before, start = kib("VmRSS"), time.perf_counter()
    cache = "memory" if mode == "dlx_memory" else "stream"
    splits = load_splits(DataSpec(dataset="image_folder", path=folder, cache=cache, workers=workers))
    load_seconds = time.perf_counter() - start
    generator = torch.Generator().manual_seed(0)
    if mode == "torchvision":
        mean = torch.as_tensor(splits.mean, device=device).view(1, -1, 1, 1)
        std = torch.as_tensor(splits.std, device=device).view(1, -1, 1, 1)
        loader = DataLoader(ImageFolder(folder, transform=PILToTensor()), batch_size=BATCH, shuffle=True,
                            num_workers=workers, persistent_workers=workers > 0, pin_memory=device.type == "cuda",
                            generator=generator)

        def batches(epoch):
            for x, _ in loader:
                yield (x.to(device, non_blocking=True).float() / 255 - mean) / std
    else:
        data = (StreamData(splits, "train", device, 0, workers) if mode == "dlx_stream"
                else TensorData(splits, "train", device, 0))

        def batches(epoch):
            for x, _ in data.batches(BATCH, generator, None, epoch=epoch):
                yield x
    first, count, rate = _epochs(batches, epochs, device)
    return {"mode": mode, "device": device.type, "workers": workers, "images_per_epoch": count,
            "images_per_second": rate, "first_epoch_seconds": first, "load_seconds": load_seconds,
            "peak_rss_growth_mib": (kib("VmHWM") - before) / 1024,
            "decoded_mib": sum(x.nbytes for x in splits.x.values()) / 2**20}


def per_item(folder: str, count: int = 2000, rounds: int = 3) -> dict:
    """Decoding and collating in one process, no workers: the work each worker does per batch, timed without the
    scheduling noise of worker processes on a busy machine (best of `rounds`, interleaved)."""
    from torch.utils.data import default_collate
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import PILToTensor

    from dlx.experiment.schema import DataSpec
    from dlx.train.data import load_splits
    from dlx.train.data.loader import _collate, _Samples
    theirs = ImageFolder(folder, transform=PILToTensor())
    ours = _Samples(load_splits(DataSpec(dataset="image_folder", path=folder, cache="stream", workers=1)).x["train"])
    count = min(count, len(ours))
    best = {"torchvision": 0.0, "dlx_stream": 0.0}
    for _ in range(rounds):
        for name, item, collate in (("torchvision", lambda i: theirs[i][0], default_collate),
                                    ("dlx_stream", ours.__getitem__, _collate)):
            start = time.perf_counter()
            for first in range(0, count, BATCH):
                collate([item(i) for i in range(first, min(first + BATCH, count))])
            best[name] = max(best[name], count / (time.perf_counter() - start))
    return {"images_per_second": best, "ratio": best["dlx_stream"] / best["torchvision"]}


def _median_round(runs: list[dict]) -> dict:
    """The run with the median images/s, with every run's images/s and the largest peak RSS growth."""
    ordered = sorted(runs, key=lambda r: r["images_per_second"])
    return {**ordered[len(ordered) // 2], "all_images_per_second": [r["images_per_second"] for r in runs],
            "peak_rss_growth_mib": max(r["peak_rss_growth_mib"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=12_000)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per mode; medians are reported")
    parser.add_argument("--folder", help="an existing image folder (else a JPEG folder is written to a temp dir)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.workers, args.epochs)))
        return
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.folder) if args.folder else Path(temporary) / "images"
        if not args.folder:
            write_folder(folder, args.images, args.side)
        rounds = {mode: [] for mode in MODES}
        for _ in range(args.rounds):  # interleaved, so that a busy spell of the machine hits every mode alike
            for mode in MODES:
                done = subprocess.run([sys.executable, __file__, "--child", mode, "--folder", str(folder),
                                       "--workers", str(args.workers), "--epochs", str(args.epochs)],
                                      capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                      check=True)
                rounds[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(rounds[mode][-1]), flush=True)
        single = per_item(str(folder))
    results = {mode: _median_round(runs) for mode, runs in rounds.items()}
    summary = {"images": args.images, "side": args.side, "batch": BATCH, "rounds": args.rounds, "results": results,
               "stream_vs_torchvision": results["dlx_stream"]["images_per_second"] /
               results["torchvision"]["images_per_second"],
               "stream_vs_memory": results["dlx_stream"]["images_per_second"] /
               results["dlx_memory"]["images_per_second"], "per_item_in_one_process": single}
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
