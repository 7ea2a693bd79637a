"""dlx's own inference path (what `dlx evaluate` and ensemble prediction run), timed in-process.

    python benchmarks/dlx_predict.py RUN_DIR --repeats 20
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch
    from train.data import load_splits
    from train.data.tensors import TensorData
    from train.device import pick_device
    from train.evaluate import load_run_model
    from train.loop import predict_logits
    torch.set_num_threads(args.threads)
    model, spec, _ = load_run_model(args.run_dir)
    plan = pick_device(spec.device)
    model = plan.place(model)
    data = TensorData(load_splits(spec.data), args.split, plan.device)
    start = time.perf_counter()
    for _ in range(args.repeats):
        predict_logits(model, data, plan)
    seconds = time.perf_counter() - start
    print(json.dumps({"images_per_second": args.repeats * len(data) / seconds, "seconds": seconds}))


if __name__ == "__main__":
    main()
