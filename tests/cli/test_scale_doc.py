"""docs/scale.md's local recipe, run exactly as written: three search workers fill one study through a journal
file, then torchrun trains one run on two processes with restarts allowed."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOC = ROOT / "docs" / "scale.md"


def local_recipe() -> str:
    text = DOC.read_text()
    match = re.search(r"<!-- local-recipe[^>]*-->\n```bash\n(.*?)```", text, re.S)
    assert match, "docs/scale.md has no local recipe block"
    return match.group(1)


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")  # several processes at once
def test_the_local_recipe_runs_as_written():
    recipe = local_recipe()
    out = Path(re.search(r"--out (/tmp/dlx-scale/search)", recipe).group(1))
    venv_bin = str(Path(os.sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(["bash", "-e", "-c", recipe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    import optuna
    journal = optuna.storages.journal.JournalFileBackend(str(out.parent / "search.journal"))
    trials = optuna.load_study(study_name="digits", storage=optuna.storages.JournalStorage(journal)).get_trials()
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 6 and len({t.user_attrs["pid"] for t in finished}) >= 2
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == len(trials)  # no two workers drew alike
    assert len(list((out / "trials").iterdir())) == len(trials)  # one folder, shared by the three workers
    summary = json.loads((out.parent / "ddp" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["world_size"] == 2
    assert "6 folder(s)" in result.stdout or "folder(s)" in result.stdout
