"""Hand-written PyTorch loops that dlx is measured against, each in its own process. Prints JSON.

    python benchmarks/reference.py train --spec configs/digits.yaml --loop plain|best
    python benchmarks/reference.py predict --spec configs/digits.yaml --loop plain|best

The network comes from the same spec and builder, so the model is the same; only the loop differs. Two loops:

- `plain`: what a user writes first. `DataLoader(TensorDataset(...), shuffle=True)`, default `Adam`, each batch
  moved to the device, the model in PyTorch's default memory format, float32.
- `best`: the same tricks dlx uses, written by hand. Tensors on the device before the loop, batches cut by
  indexing with a permutation, `Adam(fused=True)`, the model and batches in channels_last (on CPU and CUDA),
  bf16 autocast and cuDNN autotuning (benchmark mode) on CUDA. Before timing it checks that these tricks
  compute what the plain model computes.

Both run on the device dlx's `device: auto` picks (CUDA if present, else the CPU) and report it, so a row can
never compare dlx on a GPU with a reference on the CPU.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def load(spec_path: str, overrides: list[str]):
    """(spec, model on the CPU, normalised tensors of a split), as dlx would build them."""
    from dlx.archs.builder import build_model
    from dlx.archs.check import load_spec
    from dlx.train.data import load_splits
    spec = load_spec(spec_path, overrides)
    splits = load_splits(spec.data)
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, splits.input_shape, splits.classes)

    def tensors(split):
        x = torch.as_tensor(splits.x[split]).float() * splits.scale
        shape = (1, -1) + (1,) * (x.dim() - 2)
        x = (x - torch.as_tensor(splits.mean).view(shape)) / torch.as_tensor(splits.std).view(shape)
        return x, torch.as_tensor(splits.y[split])

    return spec, model, tensors


def auto_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Best:
    """The tricks of the best hand-written loop, for one device."""

    def __init__(self, device: torch.device):
        self.device = device
        self.dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
        if device.type == "cuda":  # cuDNN picks the fastest convolution for each shape, as dlx lets it
            torch.backends.cudnn.benchmark = True

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    def model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device, memory_format=torch.channels_last)

    def autocast(self):
        return torch.autocast(self.device.type, self.dtype) if self.dtype else contextlib.nullcontext()

    def adam(self, params, lr: float):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except RuntimeError:  # no fused kernel on this device
            return torch.optim.Adam(params, lr=lr)


@torch.no_grad()
def check_same_function(model: torch.nn.Module, best: Best, x: torch.Tensor) -> float:
    """The largest difference between the plain and the best layout's logits on a few images: the tricks must
    not change what the network computes (bf16 on CUDA allows rounding)."""
    model.eval()
    plain = model.to(best.device)(x[:64].to(best.device)).float()
    with best.autocast():
        fast = best.model(model)(best.layout(x[:64].to(best.device))).float()
    gap = float((plain - fast).abs().max())
    tolerance = 0.1 if best.dtype else 1e-3
    if not gap <= tolerance:
        raise SystemExit(f"the best loop's layout changes the logits by {gap:.3g} (> {tolerance})")
    return gap


def plain_batches(x, y, batch_size, device):
    from torch.utils.data import DataLoader, TensorDataset
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True):
        yield xb.to(device), yb.to(device)


def best_batches(x, y, batch_size, best: Best):
    order = torch.randperm(len(y), device=best.device)
    for start in range(0, len(y), batch_size):
        index = order[start:start + batch_size]
        yield best.layout(x[index]), y[index]


def train(args) -> dict:
    spec, model, tensors = load(args.spec, args.set)
    torch.set_num_threads(args.threads)
    device, x, y = auto_device(), *tensors("train")
    best = Best(device)
    result = {"device": device.type, "loop": args.loop}
    if args.loop == "best":
        result["checked_max_logit_gap"] = check_same_function(model, best, x)
        model, x, y = best.model(model), x.to(device), y.to(device)
        optimizer, context = best.adam(model.parameters(), spec.train.optimizer.lr), best.autocast
        batches = lambda: best_batches(x, y, spec.train.batch_size, best)  # noqa: E731
    else:
        model = model.to(device)
        optimizer, context = torch.optim.Adam(model.parameters(), lr=spec.train.optimizer.lr), contextlib.nullcontext
        batches = lambda: plain_batches(x, y, spec.train.batch_size, device)  # noqa: E731
    seconds = images = 0.0
    for _ in range(spec.train.epochs):
        model.train()
        start = time.perf_counter()
        for xb, yb in batches():
            with context():
                loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            images += len(yb)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - start
    return {**result, "images_per_second": images / seconds, "seconds": seconds}


def predict(args) -> dict:
    spec, model, tensors = load(args.spec, args.set)
    torch.set_num_threads(args.threads)
    device, (x, _) = auto_device(), tensors(args.split)
    best = Best(device)
    result = {"device": device.type, "loop": args.loop}
    if args.loop == "best":
        result["checked_max_logit_gap"] = check_same_function(model, best, x)
        model, x, context, layout = best.model(model), x.to(device), best.autocast, best.layout
    else:
        model, context, layout = model.to(device), contextlib.nullcontext, lambda batch: batch.to(device)
    model.eval()
    start = time.perf_counter()
    with torch.inference_mode(), context():
        for _ in range(args.repeats):  # keep the logits, as any evaluation must
            torch.cat([model(layout(x[begin:begin + 1024])) for begin in range(0, len(x), 1024)])
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {**result, "images_per_second": args.repeats * len(x) / seconds, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["train", "predict"])
    parser.add_argument("--spec", required=True)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--loop", choices=["plain", "best"], default="best")
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    result = (train if args.mode == "train" else predict)(args)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
