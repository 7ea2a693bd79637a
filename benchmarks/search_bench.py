"""Search benchmark on the digits space (configs/search_digits.yaml), equal trial budgets:

1. random vs TPE: best validation accuracy, median over seeds;
2. hyperband-pruned vs unpruned TPE: best validation accuracy and total epochs trained;
3. trials/hour with --workers 1 vs 2.

    python benchmarks/search_bench.py [--quick]     → writes benchmarks/search_bench.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(space_file: Path, out: Path, overrides: dict, workers: int = 1) -> dict:
    import yaml
    from search import run_search
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
    parser.add_argument("--only", choices=["samplers", "workers"], help="run one part; merged into the JSON")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
