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
}


@pytest.mark.parametrize("case", CASES)
def test_suggestion_is_not_followed_by_more_punctuation(case):
    message = assert_user_error(run_dlx("config", "configs/digits.yaml", *CASES[case]), "Did you mean '")
    suggestion = re.search(r"Did you mean '[^']+'\?(.?)", message)
    assert suggestion and suggestion.group(1) in ("", " "), message
    assert "?." not in message and ".." not in message, message
