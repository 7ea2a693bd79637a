"""What `dlx search` prints at the end, in a pipe at 80 columns: each phrase on a line of its own, none broken."""
from __future__ import annotations

from tests.conftest import run_dlx


def test_search_summary_lines_do_not_wrap_mid_phrase(make_space, tmp_path):
    space = make_space("sampler: random\ntrials: 2\nseed: 0\n", params="params:\n  model.vars.width: {choice: [8, 16]}\n")
    out = tmp_path / "search-of-a-tiny-mlp-on-digits-with-a-long-name"
    lines = run_dlx("search", space, "--out", out, env={"COLUMNS": "80"}, check=0).stdout.splitlines()
    assert f"search folder: {out}" in lines, lines
    counts = [line for line in lines if line.startswith("trials: ")]
    assert len(counts) == 1 and len(counts[0]) <= 80, lines
    assert counts[0].startswith("trials: 2 complete, 0 pruned, 0 failed; stopped: "), lines
