"""Did-you-mean suggestions end a message with their own question mark: never "Did you mean 'mnist'?."."""
from __future__ import annotations

import re

import pytest

from tests.conftest import assert_user_error, run_dlx

CASES = {
    "dataset": ["--set", "data.dataset=mnst"],
    "key": ["--set", "train.epoch=3"],
    "activation": ["--set", "model.layers.0.Conv2D.activation=rleu"],
    "layer argument": ["--set", "model.layers.0.Conv2D.filter=8"],
    "var": ["--set", "model.vars.widht=8"],
    "choice": ["--set", "data.cache=strem"],  # a Literal: 'auto', 'memory' or 'stream'
    "choice or number": ["--set", "train.precise_bn=aut"],  # 'auto', 'off' or a number of images
}


@pytest.mark.parametrize("case", CASES)
def test_suggestion_is_not_followed_by_more_punctuation(case):
    message = assert_user_error(run_dlx("config", "configs/digits.yaml", *CASES[case]), "Did you mean '")
    suggestion = re.search(r"Did you mean '[^']+'\?(.?)", message)
    assert suggestion and suggestion.group(1) in ("", " "), message
    assert "?." not in message and ".." not in message, message


def test_a_value_refused_by_every_member_of_a_union_is_one_problem_at_its_own_key():
    message = assert_user_error(run_dlx("config", "configs/digits.yaml", "--set", "train.precise_bn=often"),
                                "at 'train.precise_bn':", "'auto' or 'off'", "a valid integer", "(got 'often')")
    assert "literal[" not in message and "more problem" not in message, message
