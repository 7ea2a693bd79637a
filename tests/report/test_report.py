"""`dlx report` on real run, search and ensemble folders made here: every figure is a real, non-blank image,
report.json lists them, and each report.html loads in headless Chromium with every image decoded."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, assert_user_error, run_dlx
from tests.services import require_service

pytestmark = pytest.mark.slow  # trains and reports five folders; Chromium

CNN = ("--set", "train.epochs=2", "--set", "model.vars.width=8", "--set", "train.optimizer.lr=0.02")
MLP_SPEC = """\
name: mlp
data: {dataset: digits}
model:
  vars: {width: 16}
  layers: [Flatten, {Dense: {units: "${width}", activation: relu}}, {Dense: {units: classes}}]
train: {epochs: 2, batch_size: 128, optimizer: {name: adam, lr: 0.01}}
device: cpu
"""
SPACE = """\
base: mlp.yaml
sampler: random
seed: 0
pruner: median
pruner_args: {n_startup_trials: 2, n_warmup_steps: 0}
trials: 4
params:
  train.optimizer.lr: {float: [1.0e-3, 5.0e-2], log: true}
  model.vars.width: {choice: [8, 16, 32]}
"""
EXPECTED = {"run": {"curves", "learning_rate", "confusion_matrix", "worst_test_images"},
            "search": {"history", "param_importances", "parallel_coordinates", "slices", "trial_states"},
            "ensemble": {"weights", "disagreement", "accuracy_vs_diversity", "reliability"}}
ARTIFACTS = ROOT / "test-artifacts" / "report"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A CNN run, two MLP runs, an ensemble of all three and a 4-trial search: {kind: folder}."""
    root = tmp_path_factory.mktemp("report")
    (root / "mlp.yaml").write_text(MLP_SPEC)
    (root / "space.yaml").write_text(SPACE)
    run_dlx("train", "configs/digits.yaml", "--out", root / "runs" / "cnn", "--quiet", *CNN, check=0)
    for seed in (1, 2):
        run_dlx("train", root / "mlp.yaml", "--out", root / "runs" / f"mlp{seed}", "--quiet", "--set", f"seed={seed}",
                check=0)
    run_dlx("ensemble", *(root / "runs" / n for n in ("cnn", "mlp1", "mlp2")), "--out", root / "ensemble", check=0)
    run_dlx("search", root / "space.yaml", "--out", root / "search", "--quiet", check=0)
    return {"run": root / "runs" / "cnn", "search": root / "search", "ensemble": root / "ensemble"}


@pytest.fixture(scope="module")
def reports(folders):
    """{kind: parsed `dlx report --json` output}, each written to its folder's report/."""
    return {kind: json.loads(run_dlx("report", folder, "--json", check=0).stdout) for kind, folder in folders.items()}


def assert_real_image(path: Path) -> None:
    from PIL import Image, ImageStat
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width >= 300 and image.height >= 300, f"{path.name} is only {image.size}"
        grey = image.convert("L")
        assert len(grey.getcolors(maxcolors=1 << 20) or [0, 0]) > 1, f"{path.name} has one colour"
        assert ImageStat.Stat(grey).stddev[0] > 5, f"{path.name} is nearly blank"


@pytest.mark.parametrize("kind", ["run", "search", "ensemble"])
def test_report_writes_every_figure_as_a_real_image(kind, folders, reports):
    result = reports[kind]
    out = folders[kind] / "report"
    assert result["kind"] == kind and Path(result["out"]) == out
    assert {f["name"] for f in result["figures"]} == EXPECTED[kind], result["notes"]
    for figure in result["figures"]:
        assert_real_image(Path(figure["png"]))
        assert Path(figure["svg"]).read_text().lstrip().startswith(("<?xml", "<svg"))
    for file in result["files"]:
        assert Path(file).is_file(), file
    twin = json.loads((out / "report.json").read_text())
    assert twin["kind"] == kind and {f["name"] for f in twin["figures"]} == EXPECTED[kind]
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(EXPECTED[kind])
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page), "the page must not fetch anything"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copytree(out, ARTIFACTS / kind, dirs_exist_ok=True)


def test_report_key_numbers(folders, reports):
    run = json.loads((folders["run"] / "report" / "report.json").read_text())["numbers"]
    summary = json.loads((folders["run"] / "summary.json").read_text())
    assert run["test_accuracy"] == summary["test_accuracy"]
    assert abs(run["test_accuracy_recomputed"] - summary["test_accuracy"]) < 1e-6
    assert sum(map(sum, run["confusion_matrix"])) == run["test_samples"]
    search = json.loads((folders["search"] / "report" / "report.json").read_text())["numbers"]
    best = json.loads((folders["search"] / "best.json").read_text())
    assert search["best_value"] == best["value"] and search["trials_complete"] + search["trials_pruned"] == 4
    assert set(search["param_importances"]) == {"train.optimizer.lr", "model.vars.width"}
    ensemble = json.loads((folders["ensemble"] / "report" / "report.json").read_text())
    assert ensemble["numbers"]["members"] == 3
    assert [t["title"] for t in ensemble["tables"]] == ["Results", "Members"]


def test_report_out_option_and_table_output(folders, tmp_path):
    result = run_dlx("report", folders["ensemble"], "--out", tmp_path / "elsewhere", check=0)
    assert "report.html" in result.stdout and "reliability.png" in result.stdout
    assert (tmp_path / "elsewhere" / "report.html").is_file()


def test_search_with_too_few_trials_says_why_instead_of_importances(folders, tmp_path):
    """A search stopped after one complete trial: a sentence in the page, not a crash or an empty figure."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    small = tmp_path / "small"
    shutil.copytree(folders["search"], small, ignore=shutil.ignore_patterns("report"))
    study = optuna.load_study(study_name="space", storage=f"sqlite:///{small / 'study.db'}")
    keep = [t for t in study.get_trials() if t.state.name == "COMPLETE"][:1]
    optuna.delete_study(study_name="space", storage=f"sqlite:///{small / 'study.db'}")
    fresh = optuna.create_study(study_name="space", storage=f"sqlite:///{small / 'study.db'}", direction="maximize")
    fresh.add_trials(keep)
    result = json.loads(run_dlx("report", small, "--json", check=0).stdout)
    assert "param_importances" not in {f["name"] for f in result["figures"]}
    page = (small / "report" / "report.html").read_text()
    assert "Parameter importances need at least 3 complete trials; this search has 1" in page


def test_report_errors_are_one_paragraph(tmp_path):
    assert_user_error(run_dlx("report", tmp_path / "missing"), "no such folder")
    (tmp_path / "plain").mkdir()
    assert_user_error(run_dlx("report", tmp_path / "plain"), "not a dlx folder", "ensemble.yaml")


@pytest.fixture(scope="module")
def needs_chromium():
    """Before the module's folders are made: skip without Chromium, or fail in CI (tests/services.py)."""
    require_service(CHROMIUM is not None, "Chromium is not installed (apt-get install chromium)")


def chromium(*args: str, user_dir: Path) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={user_dir}"]
    result = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def page_title(page: Path, user_dir: Path) -> str:
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri(), user_dir=user_dir)
    match = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert match, dom[:500]
    return match.group(1)


@pytest.mark.slow
@pytest.mark.usefixtures("needs_chromium")
def test_each_report_page_loads_in_headless_chromium(folders, reports, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for kind, result in reports.items():
        page = Path(result["html"])
        assert page_title(page, tmp_path / "profile") == f"ok:{len(EXPECTED[kind])}", kind
        shot = ARTIFACTS / f"{kind}-report.png"
        chromium(f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars", page.resolve().as_uri(),
                 user_dir=tmp_path / "profile")
        assert_real_image(shot)


@pytest.mark.slow
@pytest.mark.usefixtures("needs_chromium")
def test_the_page_check_reports_broken_images_and_script_errors(folders, reports, tmp_path):
    """The in-page check itself: a broken image and a console error turn the title to 'bad:'."""
    page = Path(reports["ensemble"]["html"]).read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]{40}", "data:image/png;base64,AAAA", page, count=1)
                      .replace("</body>", "<script>console.error('boom')</script></body>"))
    title = page_title(broken, tmp_path / "profile")
    assert title.startswith("bad:") and "1 image(s) did not load" in title and "boom" in title, title


def test_runs_lists_the_search_with_its_trials_and_best(folders):
    rows = {r["kind"]: r for r in json.loads(run_dlx("runs", folders["search"].parent, "--json", check=0).stdout)}
    best = json.loads((folders["search"] / "best.json").read_text())
    assert rows["search"]["trials"] == 4 and rows["search"]["best_trial"] == best["trial"]
    assert rows["search"]["test_accuracy"] == best["test"]["accuracy"]
    assert rows["ensemble"]["trials"] == 3 and rows["ensemble"]["status"] == "finished"
