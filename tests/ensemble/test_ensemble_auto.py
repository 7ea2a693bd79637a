"""The default method (`auto`), `--metric`, the explanations, skipped trials and the members table at 80 columns,
through the real CLI.

The "calm" pool reproduces the reported failure: one member has the lowest validation NLL but the lowest accuracy
(soft, never badly wrong), three have higher accuracy but are confidently wrong on a few samples each. NLL-fitted
weights put all weight on the calm member; its accuracy is below every other member's and the plain average's.
The pool's predictions are written into each member's prediction cache (keyed by its checkpoint's hash, which the
CLI reads as it would after a first run), so the pool is exact and needs no training."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import assert_user_error, run_dlx
from tests.ensemble.conftest import GOOD

CLASSES = 10


def _member(y: np.ndarray, wrong: np.ndarray, p_right: float, p_true_wrong: float, p_top_wrong: float) -> np.ndarray:
    """Log-probabilities: the true class gets p_right where not `wrong`; elsewhere p_top_wrong goes to another class."""
    rows = np.arange(len(y))
    rest = np.where(wrong, (1 - p_true_wrong - p_top_wrong) / (CLASSES - 2), (1 - p_right) / (CLASSES - 1))
    probs = np.repeat(rest[:, None], CLASSES, axis=1)
    probs[rows, y] = np.where(wrong, p_true_wrong, p_right)
    probs[rows[wrong], (y[wrong] + 1) % CLASSES] = p_top_wrong
    return np.log(probs).astype(np.float32)


def _calm_pool(y: np.ndarray, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(y))
    n = len(y)
    shared = np.isin(np.arange(n), order[: n // 25])  # 4%: everyone wrong
    calm_wrong = shared | np.isin(np.arange(n), order[n // 25: n // 5])  # the calm member: 20% wrong, softly
    pool = [_member(y, calm_wrong, 0.7, 0.45, 0.5)]
    for k in range(3):  # sharp members: wrong on 8% more each (where the calm one is right), confidently
        own = np.isin(np.arange(n), order[n // 5 + k * (2 * n // 25): n // 5 + (k + 1) * (2 * n // 25)])
        pool.append(_member(y, shared | own, 0.6, 1e-5, 0.99))
    return pool


@pytest.fixture(scope="module")
def calm(runs, tmp_path_factory):
    """Four copies of a real run whose cached predictions are the calm pool; returns their folders."""
    from dlx.ensemble.api import shared_data
    from dlx.ensemble.members import load_member
    from dlx.ensemble.predictions import cache_path
    member = load_member(runs["mlp"])
    _, y = shared_data(member)
    pools = {s: _calm_pool(y[s], seed) for seed, s in enumerate(("val", "test"))}
    root = tmp_path_factory.mktemp("calm")
    folders = []
    for index, name in enumerate(("calm", "sharp_a", "sharp_b", "sharp_c")):
        folder = root / name
        shutil.copytree(runs["mlp"], folder, ignore=shutil.ignore_patterns("predictions"))
        path = cache_path(load_member(folder))
        path.parent.mkdir()
        np.savez(path, val=pools["val"][index], test=pools["test"][index])
        folders.append(folder)
    return folders


def _json(*args):
    return json.loads(run_dlx("ensemble", *args, "--json", check=0).stdout)


def test_default_is_never_below_the_best_member_or_the_average_on_validation_accuracy(calm, tmp_path):
    result = _json(*calm, "--out", tmp_path / "auto")
    val = {k: result["results"][k]["val"] for k in ("best_member", "average", "ensemble")}
    assert val["ensemble"]["accuracy"] >= val["best_member"]["accuracy"]
    assert val["ensemble"]["accuracy"] >= val["average"]["accuracy"]
    assert result["requested_method"] == "auto" and result["metric"] == "accuracy"
    assert result["results"]["best_member"]["id"].startswith("sharp")
    assert next(m for m in result["members"] if m["id"] == "calm")["weight"] < 0.9
    evaluated = json.loads(run_dlx("evaluate", tmp_path / "auto", "--json", check=0).stdout)
    assert evaluated["accuracy"] == pytest.approx(result["results"]["ensemble"]["test"]["accuracy"])
    assert evaluated["loss"] == pytest.approx(result["results"]["ensemble"]["test"]["nll"], rel=1e-4)

    old = _json(*calm, "--method", "weighted", "--metric", "nll", "--out", tmp_path / "old")  # fitted for NLL alone
    calm_row = next(m for m in old["members"] if m["run"].endswith("calm"))
    assert calm_row["weight"] == pytest.approx(1)  # the reported failure: all weight on the lowest-NLL member
    assert old["results"]["ensemble"]["val"]["accuracy"] < max(m["val_accuracy"] for m in old["members"]) - 0.05


def test_metric_nll_fits_and_chooses_for_nll(calm, tmp_path):
    result = _json(*calm, "--metric", "nll", "--out", tmp_path / "nll")
    selection = result["selection"]
    assert result["metric"] == "nll" and selection["metric"] == "nll"
    assert "cross-validated validation NLL" in selection["reason"]
    winner = next(c for c in selection["candidates"] if c["method"] == selection["winner"])
    assert winner["cv_nll"] == min(c["cv_nll"] for c in selection["candidates"])
    val = {k: result["results"][k]["val"] for k in ("average", "ensemble")}
    best_nll = min(m["val_nll"] for m in result["members"])
    assert val["ensemble"]["nll"] <= best_nll and val["ensemble"]["nll"] <= val["average"]["nll"]
    assert "accuracy" in val["ensemble"]  # reported beside NLL
    assert_user_error(run_dlx("ensemble", *calm, "--metric", "ece", "--out", tmp_path / "bad"), "ece")


def test_chosen_method_and_reasons_appear_in_the_table_and_the_json(calm, tmp_path):
    out = tmp_path / "table"
    table = run_dlx("ensemble", *calm, "--out", out, env={"COLUMNS": "80"}, check=0).stdout
    saved = json.loads((out / "ensemble.json").read_text())
    selection = saved["selection"]
    assert [c["method"] for c in selection["candidates"]] == ["average", "weighted", "weighted+temperature", "greedy"]
    assert selection["winner"] in table and selection["reason"].split(":")[0] in " ".join(table.split())
    assert f"method: {saved['method']}" in table
    flat = " ".join(table.split())
    for row in saved["members"]:
        assert row["reason"] and "val accuracy" in row["reason"]
        assert f"{row['id']}: {' '.join(row['reason'].split())[:40]}" in flat
    assert f"method: {saved['method']}\n" in (out / "ensemble.yaml").read_text()


def _trial(search, number: int, summary: dict, source=None) -> None:
    folder = search / "trials" / str(number)
    if source is not None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.symlink_to(source, target_is_directory=True)
        return
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))


def test_pruned_and_failed_trials_say_so(runs, tmp_path):
    search = tmp_path / "search"
    _trial(search, 0, {}, runs["mlp"])
    _trial(search, 1, {}, runs["tanh"])
    _trial(search, 2, {"status": "pruned", "epochs": 2, "reason": "pruned at epoch 2 (val_accuracy 0.4000)."})
    _trial(search, 3, {"status": "failed", "epochs": 1, "reason": "non-finite: val_loss became nan at epoch 1."})
    _trial(search, 4, {"status": "finished", "epochs": 6})
    text = " ".join(run_dlx("ensemble", search, "--out", tmp_path / "out", check=0).stdout.split())
    assert "trials/2: pruned at epoch 2" in text
    assert "trials/3: failed: non-finite: val_loss became nan at epoch 1" in text
    assert "trials/4: finished at epoch 6, but checkpoints/best.pt is gone" in text
    assert "not a finished dlx run folder" not in text
    message = assert_user_error(run_dlx("ensemble", search / "trials" / "0", search / "trials" / "2",
                                        tmp_path / "empty", "--out", tmp_path / "o2"), "pruned at epoch 2")
    assert ".." not in message.replace(str(tmp_path), "") and "?)" not in message


@pytest.fixture(scope="module")
def lookalikes(runs, tmp_path_factory):
    """The good runs behind long, alike names, as timestamped run folders are: digits-20261125-1401NN-<name>."""
    root = tmp_path_factory.mktemp("alike") / "runs"
    root.mkdir()
    for index, name in enumerate(GOOD):
        (root / f"digits-20261125-1401{index:02d}-{name}").symlink_to(runs[name], target_is_directory=True)
    return sorted(root.iterdir())


@pytest.mark.parametrize("columns", ["80", "200"])
def test_members_table_identifiers_are_complete_and_unique(lookalikes, tmp_path, columns):
    table = run_dlx("ensemble", *lookalikes, "--out", tmp_path / "out", env={"COLUMNS": columns}, check=0).stdout
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("members ("))
    body = [line for line in lines[start:] if line.startswith("│")]
    body = body[: next(i for i, line in enumerate(body) if "best member" in line)] if any(
        "best member" in line for line in body) else body
    cells = [line.split("│")[1].strip() for line in body if line.split("│")[1].strip()]
    assert cells == [path.name for path in lookalikes]  # each complete, so unique
    assert "…" not in table
    assert all(len(line) <= int(columns) for line in lines)
    if columns == "200":  # what differs is shown; what all share (the last layer) is not
        mlp = next(line for line in body if line.split("│")[1].strip().endswith("-mlp"))
        assert "seed=0" in mlp and "Dense(64,relu)" in mlp
        assert "Dense(classes)" not in table
