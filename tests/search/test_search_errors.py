"""Bad input to `dlx search` through the CLI: exit code 2, one paragraph, the key path, no traceback."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT, assert_user_error, run_dlx


@pytest.mark.parametrize("header, params, fragments", [
    ("sampler: tpee\n", None, ["at 'sampler'", "unknown sampler 'tpee'", "Did you mean 'tpe'?"]),
    ("pruner: hyperbnd\n", None, ["at 'pruner'", "Did you mean 'hyperband'?"]),
    ("", "params:\n  train.optimiser.lr: {float: [0.1, 0.2]}\n",
     ["at 'params.train.optimiser.lr'", "not a key path of the base spec", "Did you mean 'train.optimizer.lr'?"]),
    ("", "params:\n  train.optimizer.lr: {float: [0.1, 0.01]}\n",
     ["at 'params.train.optimizer.lr", "`low <= high` must hold, but got (low=0.1, high=0.01)"]),
    ("", "params:\n  model.vars.width: {int: []}\n", ["at 'params.model.vars.width.int'", "expects two bounds like {int: [1, 8]}"]),
    ("", "params:\n  train.optimizer.lr: {float: [0.0, 0.1], log: true}\n",
     ["at 'params.train.optimizer.lr", "`log: true` needs bounds > 0"]),
    ("", "params:\n  model.vars.width: {choice: []}\n", ["at 'params.model.vars.width", "at least one value"]),
    ("sampler: grid\n", "params:\n  model.vars.dropout: {float: [0.0, 0.5]}\n",
     ["at 'params.model.vars.dropout'", "needs a finite space"]),
])
def test_bad_space(make_space, tmp_path, header, params, fragments):
    space = make_space("trials: 1\n" + header, **({"params": params} if params else {}))
    assert_user_error(run_dlx("search", space, "--out", tmp_path / "s"), *fragments)


def test_unreachable_storage_is_named(make_space, tmp_path):
    space = make_space("trials: 1\n")
    url = "postgresql://dlx:secret@127.0.0.1:1/nowhere"
    flat = assert_user_error(run_dlx("search", space, "--out", tmp_path / "s", "--storage", url),
                             "at '--storage'", "can't reach the storage postgresql://dlx:***@127.0.0.1:1/nowhere")
    assert "secret" not in flat


def test_resume_with_a_conflicting_space(make_space, tmp_path):
    out = tmp_path / "s"
    run_dlx("search", make_space("trials: 1\n"), "--out", out, "--quiet", check=0)
    from tests.search.conftest import PARAMS
    changed = make_space("trials: 1\n", params=PARAMS.replace("[8, 32], step: 8", "[8, 64], step: 8"))
    assert_user_error(run_dlx("search", changed, "--out", out), "conflicts with the one study",
                      "at 'params.model.vars.width", "was [8, 32] and is now [8, 64]")


def test_an_experiment_spec_given_as_a_space_is_named_for_what_it_is(tmp_path):
    out = tmp_path / "s"
    flat = assert_user_error(run_dlx("search", ROOT / "configs" / "digits.yaml", "--out", out),
                             "digits.yaml", "an experiment spec (for `dlx train`), not a search space",
                             "`base: digits.yaml`", "params", "configs/search_digits.yaml")
    assert "more problem" not in flat and not out.exists()


def test_every_problem_of_a_space_is_shown(make_space, tmp_path):
    space = make_space("sampler: 3\ntrials: 0\nsamplr: tpe\n")
    flat = assert_user_error(run_dlx("search", space, "--out", tmp_path / "s"),
                             "at 'sampler': input should be a valid string",
                             "At 'trials' (line 3): input should be greater than or equal to 1",
                             "At 'samplr' (line 4): unknown key 'samplr'", "Did you mean 'sampler'?")
    assert "more problem" not in flat
