"""Hand-written reference loops that dlx is measured against (run in their own process).

    python benchmarks/reference.py train --spec configs/digits.yaml --epochs 5 --loader tensor
    python benchmarks/reference.py predict --spec configs/digits.yaml

The model is built from the same spec with the same builder, so only the loop differs. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load(spec_path: str, overrides: list[str]):
    import torch
    from archs.builder import build_model
    from archs.check import load_spec
    from train.data import load_splits
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


def train(args) -> dict:
    import torch
    import torch.nn.functional as F
    spec, model, tensors = load(args.spec, args.set)
    torch.set_num_threads(args.threads)
    x, y = tensors("train")
    batch_size = spec.train.batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.train.optimizer.lr)
    if args.loader == "dataloader":
        from torch.utils.data import DataLoader, TensorDataset
        loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
        batches = lambda: loader  # noqa: E731
    else:
        def batches():
            order = torch.randperm(len(y))
            for start in range(0, len(y), batch_size):
                index = order[start:start + batch_size]
                yield x[index], y[index]
    seconds = images = 0.0
    for _ in range(spec.train.epochs):
        model.train()
        start = time.perf_counter()
        for xb, yb in batches():
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            images += len(yb)
        seconds += time.perf_counter() - start
    return {"images_per_second": images / seconds, "seconds": seconds}


def predict(args) -> dict:
    import torch
    spec, model, tensors = load(args.spec, args.set)
    torch.set_num_threads(args.threads)
    x, _ = tensors(args.split)
    model.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(args.repeats):  # keep the logits, as any evaluation must
            torch.cat([model(x[begin:begin + 1024]) for begin in range(0, len(x), 1024)])
    seconds = time.perf_counter() - start
    return {"images_per_second": args.repeats * len(x) / seconds, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["train", "predict"])
    parser.add_argument("--spec", required=True)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--loader", choices=["tensor", "dataloader"], default="tensor")
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    result = (train if args.mode == "train" else predict)(args)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
