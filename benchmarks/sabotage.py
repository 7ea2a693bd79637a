"""Sabotage check: remove each safeguard in turn and show that a test fails without it.

For every safeguard below, a copy of the working tree (`git ls-files -co --exclude-standard`) gets one patch that
removes it (an exact text replacement, found exactly once, or an override appended to the module), and the tests
that claim to cover it run in that copy. A sabotage is CAUGHT only when pytest exits 1 with at least one FAILED
test: a patch that breaks imports or collection (exit 2, 3, 4 or 5) proves nothing, and neither does a test that
fails before the sabotage (the baseline runs the same tests on an unpatched copy first). /work/main itself is
never patched.

Usage: python benchmarks/sabotage.py [--only NAME ...] [--list] [--no-baseline] [--keep]
Prints the table and writes benchmarks/sabotage.json (with --only, its entries are updated in place)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "benchmarks" / "sabotage.json"
TIMEOUT = 1200  # seconds for one sabotage's tests

IN_PLACE_TEXT = '''

from dlx.core.files import strict_json as _strict_json


def atomic_write_text(path, text):  # SABOTAGE: written in place, no temporary file, no rename
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def atomic_write_json(path, data):  # SABOTAGE: written in place
    atomic_write_text(path, _strict_json(data, indent=2) + "\\n")
'''

IN_PLACE_CHECKPOINT = '''

def atomic_write(path, write):  # SABOTAGE: written in place, no temporary file, no rename
    with open(path, "wb") as handle:
        write(handle)
'''

IN_PLACE_ENSEMBLE = '''

def _write_all(folder, files):  # SABOTAGE: each file written in place, one after the other
    for name, data in files.items():
        with open(folder / name, "wb") as handle:
            handle.write(data)
'''

R = "tests/reliability/"
CRASH_TRAIN = R + "test_crash_train.py::"
CRASH_SEARCH = R + "test_crash_search.py::"
CRASH_ENSEMBLE = R + "test_crash_ensemble.py::"
DISK_FULL_CHECKPOINT = R + "test_disk_faults.py::test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoints"
KILL_LAST_PT = (CRASH_TRAIN + "test_a_kill_while_last_pt_is_written_keeps_the_previous_checkpoint_and_the_metrics_"
                "in_step")
CTRL_C_HELD = CRASH_TRAIN + "test_ctrl_c_between_a_checkpoint_and_its_metrics_waits_until_both_are_written"
TEN_KILLS_TRAIN = CRASH_TRAIN + "test_train_survives_ten_kills_and_matches_an_uninterrupted_run"
KILL_SEARCH_FILES = CRASH_SEARCH + "test_a_kill_half_way_through_each_write_keeps_the_previous_search_files"
TEN_KILLS_SEARCH = CRASH_SEARCH + "test_search_survives_ten_kills[1-2-3.0]"
GRACE = CRASH_SEARCH + "test_a_trial_that_may_still_run_is_not_failed_within_the_grace_period"
LIMITS = R + "test_hostile_input.py::test_limits_refuse_quickly_through_the_cli"


@dataclass
class Sabotage:
    name: str
    safeguard: str
    file: str
    patch: str  # what the patch does, in words
    old: str | None  # text replaced (it must occur exactly once); None: `new` is appended to the file
    new: str
    tests: tuple[str, ...]


SABOTAGES = [
    Sabotage("checkpoint_atomic", "atomic checkpoint writes", "train/checkpoint.py",
             "atomic_write overridden by a plain in-place write", None, IN_PLACE_CHECKPOINT,
             (DISK_FULL_CHECKPOINT, KILL_LAST_PT, TEN_KILLS_TRAIN)),
    Sabotage("study_folder_atomic", "atomic writes of the study files (search.yaml, study.json)", "search/folder.py",
             "atomic_write_text/json overridden by in-place writes", None, IN_PLACE_TEXT,
             (KILL_SEARCH_FILES, TEN_KILLS_SEARCH)),
    Sabotage("study_results_atomic", "atomic writes of the search results (leaderboard, best.json/yaml)",
             "search/results.py", "atomic_write_text/json overridden by in-place writes", None, IN_PLACE_TEXT,
             (KILL_SEARCH_FILES, TEN_KILLS_SEARCH)),
    Sabotage("ensemble_atomic", "atomic writes of the ensemble folder", "ensemble/folder.py",
             "_write_all overridden by in-place writes, file after file", None, IN_PLACE_ENSEMBLE,
             (CRASH_ENSEMBLE + "test_a_kill_half_way_through_each_write_keeps_the_previous_ensemble",
              CRASH_ENSEMBLE + "test_ensemble_survives_ten_kills",
              R + "test_ensemble_disk_full.py::test_a_full_disk_while_ensembling_fails_cleanly_keeps_the_previous_"
                  "ensemble_and_a_rerun_succeeds")),
    Sabotage("weights_only", "checkpoints loaded with weights_only=True", "train/checkpoint.py",
             "weights_only=True -> weights_only=False",
             "map_location=map_location, weights_only=True", "map_location=map_location, weights_only=False",
             ("tests/train/test_resume_refusals.py::test_resume_refuses_a_checkpoint_carrying_code",)),
    Sabotage("sqlite_begin_immediate", "SQLite transactions BEGIN IMMEDIATE", "search/study.py",
             'BEGIN IMMEDIATE -> BEGIN (deferred)',
             'exec_driver_sql("BEGIN IMMEDIATE")', 'exec_driver_sql("BEGIN")',
             ("tests/search/test_storage_race.py::test_two_workers_never_pop_the_same_waiting_trial",
              "tests/search/test_search_cli.py::test_two_workers_share_sqlite_without_errors",
              R + "test_concurrency.py::test_four_workers_on_sqlite_complete_a_40_trial_study")),
    Sabotage("orphan_grace_check", "orphaned-trial grace period (the check)", "search/study.py",
             "a trial without an owner is taken for dead at once (the ORPHAN_SECONDS comparison removed)",
             "return started is not None and (datetime.datetime.now() - started).total_seconds() > ORPHAN_SECONDS",
             "return started is not None", (GRACE,
              "tests/search/test_search_cli.py::test_a_trial_killed_before_recording_its_owner_is_failed_after_the_"
              "grace_period")),
    Sabotage("grace_seconds", "orphaned-trial grace period (GRACE_SECONDS, ORPHAN_SECONDS)", "search/study.py",
             "GRACE_SECONDS = 60 -> 1 (ORPHAN_SECONDS follows it)",
             "GRACE_SECONDS = 60\n", "GRACE_SECONDS = 1\n",
             (GRACE, R + "test_concurrency.py::test_four_workers_on_sqlite_complete_a_40_trial_study")),
    Sabotage("yaml_max_nodes", "YAML limit MAX_NODES", "experiment/yamlio.py", "MAX_NODES = 10**12",
             "MAX_NODES = 20_000", "MAX_NODES = 10**12", (LIMITS + "[long_flow_list]", LIMITS + "[alias_bomb]")),
    Sabotage("yaml_max_aliases", "YAML limit MAX_ALIASES", "experiment/yamlio.py", "MAX_ALIASES = 10**12",
             "MAX_ALIASES = 100 ", "MAX_ALIASES = 10**12 ", (LIMITS + "[many_aliases]",)),
    Sabotage("yaml_max_bytes", "YAML limit MAX_YAML_BYTES", "experiment/yamlio.py",
             "MAX_YAML_BYTES = 10**9 (not 10**12: the bounded read would then allocate 1 TB and fail every spec)",
             "MAX_YAML_BYTES = 1_000_000", "MAX_YAML_BYTES = 10**9", (LIMITS + "[huge_list]",)),
    Sabotage("deferred_sigint", "Ctrl-C deferred while an epoch is saved", "train/loop.py",
             "deferred_sigint made a no-op (yields at once, handler untouched)",
             "    if threading.current_thread() is not threading.main_thread():\n        yield\n        return\n",
             "    if True:  # SABOTAGE: Ctrl-C is not held\n        yield\n        return\n",
             (CTRL_C_HELD, "tests/train/test_interrupt_cli.py::test_ctrl_c_stops_with_a_resumable_checkpoint")),
    Sabotage("state_before_checkpoint", "the resume state moves on only with its checkpoint (train/loop.py)",
             "train/loop.py", "the state advances before the epoch is saved",
             "            save(done, improved)\n            state.__dict__.update(done.__dict__)\n",
             "            state.__dict__.update(done.__dict__)  # SABOTAGE\n            save(done, improved)\n",
             (DISK_FULL_CHECKPOINT, CTRL_C_HELD, KILL_LAST_PT)),
    Sabotage("metrics_before_checkpoint", "the resume state moves on only with its checkpoint (train/run.py)",
             "train/run.py", "RunWriter.save writes metrics.jsonl before the checkpoints",
             "        if improved:\n            save_checkpoint(self.folder.best, common)\n",
             "        self.folder.write_metrics(state.history)  # SABOTAGE: metrics before the checkpoints\n"
             "        if improved:\n            save_checkpoint(self.folder.best, common)\n",
             (KILL_LAST_PT, TEN_KILLS_TRAIN)),
]


def copy_tree(destination: Path) -> Path:
    """The working tree's tracked and untracked-but-not-ignored files, as they are now, under `destination`."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is listed too
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def apply(sabotage: Sabotage, tree: Path) -> None:
    path = tree / sabotage.file
    text = path.read_text()
    if sabotage.old is None:
        path.write_text(text + sabotage.new)
        return
    found = text.count(sabotage.old)
    if found != 1:
        raise SystemExit(f"{sabotage.name}: the patched text occurs {found} times in {sabotage.file}, not once; "
                         "update the sabotage to the code")
    path.write_text(text.replace(sabotage.old, sabotage.new))


def run_tests(tree: Path, tests, timeout: float) -> dict:
    """Run `tests` in `tree`: exit code, FAILED and ERROR node ids, seconds, and the output's tail."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", *tests, "-p", "no:cacheprovider", "-q", "-rfE"]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, code = process.communicate()[0] + f"\n(killed after {timeout} s)", "timeout"
    lines = output.splitlines()
    listed = {kind: sorted({line.split(" ", 1)[1].split(" - ", 1)[0] for line in lines if line.startswith(kind + " ")})
              for kind in ("FAILED", "ERROR")}
    return {"exit": code, "failed": listed["FAILED"], "errors": listed["ERROR"],
            "seconds": round(time.monotonic() - started, 1), "tail": "\n".join(lines[-15:])}


def verdict(result: dict, flaky: set) -> str:
    if result["exit"] == "timeout":
        return "TIMEOUT"
    if result["exit"] == 0:
        return "UNCAUGHT"
    if result["exit"] != 1:
        return f"INVALID (pytest exit {result['exit']})"
    real = [test for test in result["failed"] if test not in flaky]
    return "CAUGHT" if real else "UNCAUGHT (only errors or baseline failures)"


def check(sabotage: Sabotage, work: Path, flaky: set, timeout: float, keep: bool) -> dict:
    tree = copy_tree(work / sabotage.name)
    apply(sabotage, tree)
    result = run_tests(tree, sabotage.tests, timeout)
    if not keep:
        shutil.rmtree(tree, ignore_errors=True)
    return {"name": sabotage.name, "safeguard": sabotage.safeguard, "file": sabotage.file, "patch": sabotage.patch,
            "tests": list(sabotage.tests), "verdict": verdict(result, flaky), **result}


def baseline(work: Path, chosen, timeout: float) -> dict:
    """The same tests on an unpatched copy: each must pass, or its failure under a sabotage proves nothing."""
    tests = list(dict.fromkeys(test for sabotage in chosen for test in sabotage.tests))
    tree = copy_tree(work / "baseline")
    return {"tests": tests, **run_tests(tree, tests, timeout * 2)}


def short(test: str) -> str:
    return test.split("/")[-1]


def table(results: list[dict]) -> str:
    rows = ["| sabotage | safeguard | patch | verdict | failed tests | s |", "|---|---|---|---|---|---|"]
    for r in results:
        failed = ", ".join(f"`{short(t)}`" for t in r["failed"]) or "—"
        rows.append(f"| {r['name']} | {r['safeguard']} | {r['patch']} (`{r['file']}`) | {r['verdict']} | {failed} "
                    f"| {r['seconds']:.0f} |")
    return "\n".join(rows)


def save(results: list[dict], report: dict, only: bool) -> None:
    """Write sabotage.json; with --only, replace just those entries of the last full run."""
    if only and OUTPUT.exists():
        previous = json.loads(OUTPUT.read_text())
        fresh = {r["name"]: r for r in results}
        previous["results"] = [fresh.pop(r["name"], r) for r in previous["results"]] + list(fresh.values())
        previous.setdefault("reruns", []).append({"names": [r["name"] for r in results], **report})
        report = previous
    else:
        report = {**report, "results": results}
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[s.name for s in SABOTAGES], help="rerun this one")
    parser.add_argument("--list", action="store_true", help="list the sabotages and their tests")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unpatched run of the same tests")
    parser.add_argument("--keep", action="store_true", help="keep the patched copies (printed) to look into them")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds for one sabotage's tests")
    args = parser.parse_args(argv)
    chosen = [s for s in SABOTAGES if not args.only or s.name in args.only]
    if args.list:
        for s in chosen:
            found = "appended" if s.old is None else f"patched text found {(ROOT / s.file).read_text().count(s.old)}x"
            print(f"{s.name}: {s.safeguard} — {s.patch} ({s.file}; {found})\n  " + "\n  ".join(s.tests))
        return 0
    # a shell's background job ignores SIGINT, and so would every test process: the Ctrl-C tests need it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="dlx-sabotage-"))
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count()}
    flaky: set = set()
    if not args.no_baseline:
        report["baseline"] = base = baseline(work, chosen, args.timeout)
        flaky = set(base["failed"]) | set(base["errors"])
        print(f"baseline: exit {base['exit']} in {base['seconds']:.0f} s" + (f"; failing: {sorted(flaky)}" if flaky
                                                                              else ""), flush=True)
        if base["exit"] not in (0, 1):
            raise SystemExit(f"the unpatched tests did not run (pytest exit {base['exit']}):\n{base['tail']}")
    results = []
    for sabotage in chosen:
        results.append(check(sabotage, work, flaky, args.timeout, args.keep))
        r = results[-1]
        caught_by = ", ".join(map(short, r["failed"])) or r["tail"][-300:]
        print(f"{r['name']}: {r['verdict']} in {r['seconds']:.0f} s ({caught_by})", flush=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    save(results, report, bool(args.only))
    print(table(results))
    print(f"\n{len(results)} sabotages in {report['seconds'] / 60:.1f} min; written to {OUTPUT.relative_to(ROOT)}"
          + (f"; copies kept in {work}" if args.keep else ""))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["verdict"] == "CAUGHT" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
