"""dlx's own inference path (what `dlx evaluate` and ensemble prediction run), timed in-process.

    python benchmarks/dlx_predict.py RUN_DIR --repeats 20 [--path evaluate|ensemble]

`evaluate` is `dlx evaluate`'s predict_logits; `ensemble` is the per-member prediction `dlx ensemble` runs
(ensemble.predictions.member_log_probs, on inputs scaled to [0, 1]).
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
    parser.add_argument("--path", choices=["evaluate", "ensemble"], default="evaluate")
    args = parser.parse_args()
    import torch
    from dlx.train.data import load_splits
    from dlx.train.data.tensors import TensorData
    from dlx.train.device import pick_device
    from dlx.train.evaluate import load_run_model
    from dlx.train.loop import predict_logits
    torch.set_num_threads(args.threads)
    if args.path == "ensemble":
        return ensemble_member(args)
    model, spec, _ = load_run_model(args.run_dir)
    plan = pick_device(spec.device)
    model = plan.place(model)
    data = TensorData(load_splits(spec.data), args.split, plan.device)
    start = time.perf_counter()
    for _ in range(args.repeats):
        predict_logits(model, data, plan)
    seconds = time.perf_counter() - start
    print(json.dumps({"images_per_second": args.repeats * len(data) / seconds, "seconds": seconds,
                      "device": plan.device.type}))


def ensemble_member(args) -> None:
    import numpy as np
    from dlx.ensemble.members import load_member
    from dlx.ensemble.predictions import load_model, member_log_probs
    from dlx.train.data import load_splits
    member = load_member(Path(args.run_dir))
    splits = load_splits(member.spec.data)
    unit = splits.x[args.split].astype(np.float32) * np.float32(splits.scale)
    model = load_model(member)
    start = time.perf_counter()
    for _ in range(args.repeats):
        member_log_probs(member, unit, model)
    seconds = time.perf_counter() - start
    device = next(model.parameters()).device.type
    print(json.dumps({"images_per_second": args.repeats * len(unit) / seconds, "seconds": seconds, "device": device}))


if __name__ == "__main__":
    main()
