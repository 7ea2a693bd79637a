"""CI runs what the README says, nothing else: .ci/run installs only system services, then runs the README's two
opening commands read from README.md; the `test` extra those commands install holds every package tests import."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

from tests.conftest import ROOT

CI = ROOT / ".ci" / "run"


def readme_bash_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)]


def test_ci_runs_the_readme_commands_read_from_the_readme():
    """The first block installs dlx as a user would (a regular install, no test extra) and trains; the second
    installs the test extra and runs the suite."""
    blocks = readme_bash_blocks()
    assert "pip install" in blocks[0] and "[test]" not in blocks[0] and "dlx train" in blocks[0]
    assert "-e '.[test]'" in blocks[1] and "pytest" in blocks[1]
    script = CI.read_text()
    function = re.search(r"^readme_block\(\) \{\n.*?^\}\n", script, re.S | re.M).group(0)
    for index in (1, 2):
        read = subprocess.run(["bash", "-c", f"{function}readme_block {index}"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        assert read == blocks[index - 1]
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    assert "pip install" not in code and "-m pytest" not in code, "CI must not install or test beyond the README"
    assert "find_spec" in code and "git status --porcelain" in code  # it checks the user's install and the clean tree


def extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_the_test_extra_is_every_feature_extra_plus_the_test_tools():
    """tests/postgres_server.py needs psycopg2, tests/export/ onnxruntime, ...: the README's `.[test]` install must
    bring every feature extra, and names them through `dlx[...]` rather than repeating their requirements."""
    declared = extras()
    test = declared.pop("test")
    own = [requirement for requirement in test if not requirement.startswith("dlx[")]
    included = {name for requirement in test if requirement.startswith("dlx[")
                for name in requirement[4:].rstrip("]").split(",")}
    assert included == set(declared), f"the test extra includes {sorted(included)}; the extras: {sorted(declared)}"
    repeated = names(own) & names([r for requirements in declared.values() for r in requirements])
    assert not repeated, f"the test extra repeats what its extras hold: {sorted(repeated)}"
    assert {"psycopg2-binary", "tensorboard", "onnxruntime"} <= names([r for e in declared.values() for r in e])


def test_a_missing_service_skips_outside_ci_and_fails_in_ci(tmp_path):
    (tmp_path / "test_needs_service.py").write_text(
        "from tests.services import require_service\n\n\n"
        "def test_it():\n    require_service(False, 'no frobnicator server (apt-get install frobnicator)')\n")
    outcomes = {}
    for ci in ("", "true"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": ci}
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider",
                                 str(tmp_path / "test_needs_service.py")], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=120)
        outcomes[ci] = (result.returncode, result.stdout)
    assert outcomes[""][0] == 0 and "1 skipped" in outcomes[""][1] and "no frobnicator server" in outcomes[""][1]
    assert outcomes["true"][0] == 1 and "1 failed" in outcomes["true"][1]
    assert "no frobnicator server (apt-get install frobnicator); CI installs it" in outcomes["true"][1]
