"""What a trial's model costs, known before it trains: parameters and MFLOPs from the builder's shape inference,
and batch-1 inference latency measured on the trial's device (untrained weights run as fast as trained ones)."""
from __future__ import annotations

import statistics
import time

from dlx.core.lazy import lazy_module

torch = lazy_module("torch")

WARMUP_CALLS = 5
TIMED_CALLS = 30


def model_costs(spec, latency: bool = False) -> dict:
    """{params, mflops[, latency_ms]} of the model `spec` (a validated ExperimentSpec) describes."""
    from dlx.archs import build_model, summarize
    from dlx.train import dataset_info, pick_device
    info = dataset_info(spec.data)
    shape = tuple(info.input_shape)
    summary = summarize(spec, shape, info.classes)
    costs = {"params": float(summary["total_params"]), "mflops": float(summary["mflops"])}
    if latency:
        plan = pick_device(spec.device)
        model = plan.place(build_model(spec.model, shape, info.classes)).eval()
        costs["latency_ms"] = batch1_latency_ms(model, shape, plan.device)
    return costs


def batch1_latency_ms(model, input_shape: tuple, device) -> float:
    """Median milliseconds of one batch-1 forward pass, after WARMUP_CALLS untimed ones."""
    probe = torch.zeros(1, *input_shape, device=device)
    sync = torch.cuda.synchronize if getattr(device, "type", str(device)) == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        for call in range(WARMUP_CALLS + TIMED_CALLS):
            sync()
            started = time.perf_counter()
            model(probe)
            sync()
            if call >= WARMUP_CALLS:
                times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)
