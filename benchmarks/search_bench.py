"""Search benchmark on the digits space (configs/search_digits.yaml), equal trial budgets:

1. random vs TPE: best validation accuracy, median over seeds;
2. hyperband-pruned vs unpruned TPE: best validation accuracy and total epochs trained;
3. trials/hour with --workers 1 vs 2;
4. `--only pruning`: does pruning pay? TPE with each pruner (its dlx defaults) against the same TPE search
   unpruned, same seeds, on an MLP space over digits and over 5,000 real MNIST images (tests/realdata.py):
   goal: the pruned search keeps >= 99% of the unpruned best validation accuracy using <= 40% of its epochs.
   Also the same for a two-objective search (val_accuracy, params), pruned by dlx's own rules.

    python benchmarks/search_bench.py [--quick] [--only samplers|workers|pruning] [--data digits,mnist5k]
    → writes (merges into) benchmarks/search_bench.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(space_file: Path, out: Path, overrides: dict, workers: int = 1) -> dict:
    import yaml
    from dlx.search import run_search
    data = yaml.safe_load(space_file.read_text())
    data.update(overrides)
    path = out.parent / f"{out.name}.yaml"
    data["base"] = str((space_file.parent / data["base"]).resolve())
    path.write_text(yaml.safe_dump(data))
    started = time.perf_counter()
    result = run_search(path, out=out, workers=workers)
    seconds = time.perf_counter() - started
    rows = json.loads((out / "leaderboard.json").read_text())
    return {"best": result.best["value"], "epochs": sum(r["epochs"] or 0 for r in rows), "seconds": seconds,
            "trials": result.counts["done"], "pruned": result.counts["pruned"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer trials, epochs and seeds")
    parser.add_argument("--only", choices=["samplers", "workers", "pruning"], help="run one part; merged into the JSON")
    parser.add_argument("--data", default="digits,mnist5k", help="datasets of the pruning part")
    parser.add_argument("--baseline", help="a pruning JSON whose unpruned searches to reuse (same mode, seeds)")
    parser.add_argument("--seeds", help="seeds of the pruning part, e.g. 0 (default: 0,1,2; quick: 0)")
    parser.add_argument("--tag", default="", help="suffix of the pruning part's JSON file")
    parser.add_argument("--pruners", default="hyperband asha mo-hyperband",
                        help="pruners of the pruning part, space-separated: NAME[:ARG=VALUE,...]; mo-NAME: two "
                             "objectives (val_accuracy, params), pruned by dlx")
    args = parser.parse_args()
    if args.only == "pruning":
        out = Path(__file__).with_name(f"search_bench_pruning_{args.data.replace(',', '_')}{args.tag}.json")
        reuse = json.loads(Path(args.baseline).read_text()) if args.baseline else None
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
        out.write_text(json.dumps(pruning_report(args.data.split(","), args.pruners.split(" "), args.quick, reuse,
                                                 seeds), indent=2) + "\n")
        print(f"wrote {out}")
        return
    out = Path(__file__).with_suffix(".json")
    trials, epochs, seeds = (6, 3, [0, 1]) if args.quick else (20, 8, [0, 1, 2, 3, 4])
    space = ROOT / "configs" / "search_digits.yaml"
    base = {"trials": trials, "overrides": {"train.epochs": epochs}, "keep": 1}
    report = json.loads(out.read_text()) if args.only and out.exists() else {}
    report.update({"trials": trials, "epochs": epochs, "seeds": seeds, "quick": args.quick})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for sampler in ("random", "tpe") if args.only != "workers" else ():
            runs = [run(space, tmp / f"{sampler}-{s}", {**base, "sampler": sampler, "pruner": "none", "seed": s})
                    for s in seeds]
            report[sampler] = {"best_median": statistics.median(r["best"] for r in runs), "runs": runs}
            print(sampler, report[sampler]["best_median"], flush=True)
        pruned = [] if args.only == "workers" else [run(space, tmp / f"hb-{s}", {**base, "sampler": "tpe", "pruner": "hyperband", "seed": s})
                  for s in seeds]
        if pruned:
            _pruning(report, pruned)
        for workers in (1, 2) if args.only != "samplers" else ():
            r = run(space, tmp / f"workers-{workers}", {**base, "trials": 4 * workers, "sampler": "random",
                                                         "pruner": "none"}, workers=workers)
            report[f"workers_{workers}"] = {**r, "trials_per_hour": 3600 * r["trials"] / r["seconds"]}
            print("workers", workers, report[f"workers_{workers}"]["trials_per_hour"], flush=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


def _pruning(report: dict, pruned: list) -> None:
    unpruned = report["tpe"]["runs"]
    report["hyperband"] = {"best_median": statistics.median(r["best"] for r in pruned), "runs": pruned,
                           "epochs_total": sum(r["epochs"] for r in pruned),
                           "unpruned_epochs_total": sum(r["epochs"] for r in unpruned)}
    report["hyperband"]["best_ratio"] = report["hyperband"]["best_median"] / report["tpe"]["best_median"]
    report["hyperband"]["epochs_ratio"] = report["hyperband"]["epochs_total"] / report["hyperband"]["unpruned_epochs_total"]
    print("hyperband", report["hyperband"]["best_ratio"], report["hyperband"]["epochs_ratio"], flush=True)


# -- does pruning pay? ---------------------------------------------------------------------------------------

MLP = {"name": "mlp", "seed": 0, "data": {"dataset": "digits", "val_split": 0.1},
       "model": {"vars": {"width": 64, "dropout": 0.2},
                 "layers": ["Flatten", {"Dense": {"units": "${width}", "activation": "relu"}},
                            {"Dropout": "${dropout}"}, {"Dense": {"units": "classes"}}]},
       "train": {"epochs": 8, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.003}}, "device": "cpu"}
MLP_PARAMS = {"train.optimizer.lr": {"float": [1.0e-4, 3.0e-2], "log": True},
              "train.batch_size": {"choice": [32, 64, 128]},
              "model.vars.width": {"int": [16, 128], "step": 16},
              "model.vars.dropout": {"float": [0.0, 0.5]}}
GOAL_BEST, GOAL_EPOCHS = 0.99, 0.40


def _mlp_space(tmp: Path, dataset: str, data_root: Optional[Path], trials: int, epochs: int) -> Path:
    import yaml
    base = json.loads(json.dumps(MLP))
    base["data"]["dataset"] = dataset
    if data_root is not None:
        base["data"]["root"] = str(data_root)
    base["train"]["epochs"] = epochs
    (tmp / f"mlp-{dataset}.yaml").write_text(yaml.safe_dump(base))
    space = {"base": f"mlp-{dataset}.yaml", "trials": trials, "sampler": "tpe", "keep": 1, "params": MLP_PARAMS}
    path = tmp / f"space-{dataset}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def _searches(space: Path, tmp: Path, label: str, extra: dict, seeds: list) -> list[dict]:
    runs = []
    for seed in seeds:
        runs.append(run(space, tmp / f"{label}-{seed}", {**extra, "seed": seed}))
        print(label, seed, runs[-1], flush=True)
    return runs


def _compare(pruned: list[dict], unpruned: list[dict]) -> dict:
    """Pruned against unpruned searches of the same seeds: best-accuracy and epoch ratios, and the goal."""
    best = statistics.median(r["best"] for r in pruned) / statistics.median(r["best"] for r in unpruned)
    epochs = sum(r["epochs"] for r in pruned) / sum(r["epochs"] for r in unpruned)
    return {"best_ratio": best, "epochs_ratio": epochs, "goal_met": best >= GOAL_BEST and epochs <= GOAL_EPOCHS,
            "pruned_share": sum(r["pruned"] for r in pruned) / sum(r["trials"] for r in pruned),
            "seconds_ratio": sum(r["seconds"] for r in pruned) / sum(r["seconds"] for r in unpruned),
            "runs": pruned}


def _pruner(text: str) -> dict:
    """'hyperband' or 'mo-asha' or 'hyperband:reduction_factor=4,min_resource=2' → space keys."""
    name, _, args = text.partition(":")
    multi = name.startswith("mo-")
    pruner_args = {k: json.loads(v) for k, v in (a.split("=") for a in args.split(",") if a)}
    return {"pruner": name.removeprefix("mo-"), "pruner_args": pruner_args,
            **({"objectives": [{"val_accuracy": "max"}, {"params": "min"}]} if multi else {})}


def pruning_report(datasets: list[str], pruners: list[str], quick: bool, reuse: Optional[dict] = None,
                   seeds: Optional[list[int]] = None) -> dict:
    """{dataset: {pruner: comparison}} against one unpruned search per seed (and one two-objective one for the
    `mo-` pruners, which dlx decides itself). `reuse`: an earlier report of the same mode whose unpruned
    searches (deterministic for a seed on CPU) are taken instead of being run again."""
    trials, epochs, default_seeds = (8, 4, [0]) if quick else (20, 8, [0, 1, 2])
    seeds = seeds or default_seeds
    report = {"trials": trials, "epochs": epochs, "seeds": seeds, "quick": quick}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = None
        if "mnist5k" in datasets:
            from tests.realdata import write_mnist5k
            root = write_mnist5k(tmp / "data")
        for dataset in datasets:
            space = _mlp_space(tmp, "mnist" if dataset == "mnist5k" else dataset,
                               root if dataset == "mnist5k" else None, trials, epochs)
            rows = report.setdefault(dataset, {})
            earlier = (reuse or {}).get(dataset) or {}
            baselines = {k.removeprefix("unpruned-"): v["runs"] for k, v in earlier.items()
                         if k.startswith("unpruned-")}
            rows.update({f"unpruned-{k}": {"runs": v, "reused": True} for k, v in baselines.items()})
            for text in pruners:
                extra = _pruner(text)
                plain = {k: v for k, v in extra.items() if k not in ("pruner", "pruner_args")}
                key = "multi" if plain else "single"
                if key not in baselines:
                    baselines[key] = _searches(space, tmp, f"{dataset}-{key}-none", {**plain, "pruner": "none"},
                                               seeds)
                    rows[f"unpruned-{key}"] = {"runs": baselines[key]}
                rows[text] = _compare(_searches(space, tmp, f"{dataset}-{text}", extra, seeds), baselines[key])
                print(dataset, text, {k: v for k, v in rows[text].items() if k != "runs"}, flush=True)
    return report


if __name__ == "__main__":
    main()
