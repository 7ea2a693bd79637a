"""Graph benchmark: (1) a layer graph's forward+backward (dlx's generated forward over its schedule) against the
very same modules called in a hand-written `forward`, as a ratio measured in the same process, rounds
interleaved (goal: hand-written time / graph time >= 0.97); (2) `dlx summary` seconds (wall-clock and CPU) of the
Keras-applications presets at 224×224 with 1,000 classes, beside plain_cnn's (start-up alone) (goal: ResNet50
under 2 s).

The graph is a ResNet written with `name:`/`inputs:`/`Add` (not Residual sugar), so it runs as a real graph.
Usage: python benchmarks/graph_bench.py [--device cpu|cuda] [--threads N] [--quick] [--no-summary].
Writes graph_bench_DEVICE.json here."""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name → (input (C, H, W), batch, width, blocks): "tiny" is where per-call overhead shows most
CASES = {"tiny": ((3, 8, 8), 8, 8, 8), "cifar": ((3, 32, 32), 32, 16, 8)}
SUMMARY_PRESETS = ["plain_cnn", "resnet50", "densenet121", "xception", "mobilenet_v2"]  # plain_cnn: start-up alone


def resnet_graph(width: int, blocks: int) -> list:
    """A stem, then `blocks` basic blocks, each adding its input back by name, then the head."""
    conv = {"filters": width, "kernel_size": 3, "padding": "same", "use_bias": False}
    layers = [{"Conv2D": conv}, {"BatchNormalization": {}}, {"Activation": {"activation": "relu", "name": "b0"}}]
    for k in range(1, blocks + 1):
        layers += [{"Conv2D": conv}, {"BatchNormalization": {}}, {"Activation": {"activation": "relu"}},
                   {"Conv2D": conv}, {"BatchNormalization": {"name": f"b{k}_bn"}},
                   {"Add": {"inputs": [f"b{k}_bn", f"b{k - 1}"]}},
                   {"Activation": {"activation": "relu", "name": f"b{k}"}}]
    return layers + [{"GlobalAveragePooling2D": {}}, {"Dense": {"units": 10}}]


class HandWritten(nn.Module):
    """The graph's own modules, called by a forward written out by hand for this architecture."""

    def __init__(self, layers: nn.Sequential, blocks: int):
        super().__init__()
        modules = list(layers)
        self.stem = nn.ModuleList(modules[:3])
        self.blocks = nn.ModuleList(nn.ModuleList(modules[3 + 7 * k: 10 + 7 * k]) for k in range(blocks))
        self.head = nn.ModuleList(modules[-2:])

    def forward(self, x):
        conv, bn, relu = self.stem
        x = relu(bn(conv(x)))
        for conv1, bn1, relu1, conv2, bn2, add, relu2 in self.blocks:
            x = relu2(add(bn2(conv2(relu1(bn1(conv1(x))))), x))
        pool, dense = self.head
        return dense(pool(x))


def step_seconds(model: nn.Module, x: torch.Tensor, steps: int) -> float:
    """Seconds per forward+backward (gradients set to None between steps, as an optimiser loop does)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        model(x).sum().backward()
        for p in model.parameters():
            p.grad = None
    sync()
    return (time.perf_counter() - start) / steps


def compare(name: str, device: str, rounds: int, steps: int) -> dict:
    from dlx.archs import build_model
    from dlx.experiment.schema import ModelSpec
    shape, batch, width, blocks = CASES[name]
    graph = build_model(ModelSpec(layers=resnet_graph(width, blocks)), shape, None).to(device).train()
    assert graph.sources is not None, "the benchmark must run a graph, not a chain"
    hand = HandWritten(graph.layers, blocks).train()
    x = torch.randn(batch, *shape, device=device)
    with torch.no_grad():
        assert torch.allclose(graph.eval()(x), hand.eval()(x)), "the hand-written forward must compute the same"
    graph.train(), hand.train()
    step_seconds(graph, x, steps), step_seconds(hand, x, steps)  # warm-up
    ratios, graph_times, hand_times = [], [], []
    for _ in range(rounds):
        g, h = step_seconds(graph, x, steps), step_seconds(hand, x, steps)
        graph_times.append(g), hand_times.append(h), ratios.append(h / g)
    return {"device": device, "input": list(shape), "batch": batch, "width": width, "blocks": blocks,
            "modules": len(graph.layers), "graph_ms": 1e3 * statistics.median(graph_times),
            "hand_written_ms": 1e3 * statistics.median(hand_times), "ratio": statistics.median(ratios),
            "goal": ">= 0.97"}


def summary_seconds(preset: str) -> tuple[float, float]:
    """(wall-clock, CPU) seconds of `dlx summary` (a new process, as a user runs it) at 224×224×3, 1,000 classes.
    CPU seconds stay meaningful on a busy machine, where wall-clock time mostly measures the wait for a core."""
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "spec.yaml"
        spec.write_text(f"model: {{preset: {preset}}}\ndata: {{dataset: image_folder, path: nowhere}}\n")
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([sys.executable, "-m", "dlx", "summary", str(spec), "--input-shape", "224,224,3",
                        "--classes", "1000", "--json"], cwd=ROOT, check=True, capture_output=True)
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def summarize_seconds(preset: str) -> float:
    """Seconds of `archs.summarize` alone (imports done), at 224×224×3 and 1,000 classes: the model's own share."""
    from dlx.archs import summarize
    from dlx.experiment.schema import ExperimentSpec
    spec = ExperimentSpec(model={"preset": preset})
    start = time.perf_counter()
    summarize(spec, (3, 224, 224), 1000)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--no-summary", action="store_true", help="skip the `dlx summary` timings")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's); 1 is steadiest on a "
                                                    "busy machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds, steps = (3, 5) if args.quick else (15, 20)
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__, "forward_backward": {},
              "summary_seconds": {}}
    if args.device == "cuda":
        result["gpu"] = torch.cuda.get_device_name()
    for name in CASES:
        result["forward_backward"][name] = compare(name, args.device, rounds, steps)
        print(name, json.dumps(result["forward_backward"][name]), flush=True)
    if not args.no_summary:
        for preset in SUMMARY_PRESETS:
            summary_seconds(preset)  # the first run also pays for cold file caches
            wall, cpu = min(summary_seconds(preset) for _ in range(3))
            result["summary_seconds"][preset] = {"wall": wall, "cpu": cpu, "in_process": summarize_seconds(preset)}
            print(preset, json.dumps(result["summary_seconds"][preset]), flush=True)
    (ROOT / "benchmarks" / f"graph_bench_{args.device}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
