"""CI runs what the README says, nothing else: .ci/run installs only system services, then runs the README's two
opening commands read from README.md; the `test` extra those commands install holds every package tests import."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import ROOT

CI = ROOT / ".ci" / "run"


def readme_bash_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)]


def test_ci_runs_the_readme_commands_read_from_the_readme():
    blocks = readme_bash_blocks()
    assert "-e '.[test]'" in blocks[0] and "pytest" in blocks[1]
    script = CI.read_text()
    function = re.search(r"^readme_block\(\) \{\n.*?^\}\n", script, re.S | re.M).group(0)
    for index in (1, 2):
        read = subprocess.run(["bash", "-c", f"{function}readme_block {index}"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        assert read == blocks[index - 1]
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    assert "pip install" not in code and "pytest" not in code, "CI must not install or test beyond the README"


def test_the_test_extra_holds_the_drivers_the_tests_use():
    """tests/postgres_server.py needs psycopg2 and tests/report/test_tensorboard.py needs tensorboard: the README's
    `.[test]` install must bring both, or those tests can't run from a fresh clone."""
    line = re.search(r"^test = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S).group(1)
    extra = re.findall(r'"([^"]+)"', line)
    names = {re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower() for requirement in extra}
    assert {"psycopg2-binary", "tensorboard"} <= names


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
