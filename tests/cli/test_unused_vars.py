"""A var that no layer references (a misspelling, usually) is an error with a did-you-mean, naming the file and
the key path: in a spec, through --set, in a search space that varies it; a preset's references count."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT, assert_user_error, run_dlx

SPEC = """\
name: tiny
model:
  vars: {width: 8, widht: 16}
  layers: [Flatten, {Dense: {units: "${width}"}}, {Dense: {units: classes}}]
"""


def test_unreferenced_var_in_the_spec_file(write_yaml):
    spec = write_yaml(SPEC)
    assert_user_error(run_dlx("config", spec), f"{spec}:3 at 'model.vars.widht'", "no layer references the var 'widht'",
                      "the layers reference: width.", "Did you mean 'width'?")


def test_misspelt_var_through_set_does_not_train(tmp_path):
    result = run_dlx("train", "configs/digits.yaml", "--set", "model.vars.widht=8", "--set", "train.epochs=1",
                     "--out", tmp_path / "run")
    assert_user_error(result, "configs/digits.yaml at 'model.vars.widht'", "Did you mean 'width'?")
    assert not (tmp_path / "run").exists()


def test_vars_a_preset_references_count_and_others_do_not(write_yaml):
    spec = write_yaml("data: {dataset: digits}\nmodel: {preset: resnet_small, vars: {width: 8, blocks: 0}}\n")
    run_dlx("config", spec, check=0)
    assert_user_error(run_dlx("config", spec, "--set", "model.vars.blcks=2"), "at 'model.vars.blcks'",
                      "the layers reference: blocks, width.", "Did you mean 'blocks'?")


def test_vars_used_only_where_when_drops_a_layer_count(write_yaml):
    spec = write_yaml("model:\n  vars: {bn: false, rate: 0.5, depth: 0}\n  layers:\n"
                      "    - Flatten\n    - {BatchNormalization: {}, when: '${bn}'}\n"
                      "    - Repeat: {times: '${depth}', layers: [{Dropout: '${rate}'}]}\n"
                      "    - Dense: {units: classes}\n")
    run_dlx("config", spec, check=0)


def test_search_space_varying_an_unreferenced_var(tmp_path):
    (tmp_path / "space.yaml").write_text(f"base: {ROOT / 'configs' / 'digits.yaml'}\ntrials: 2\nparams:\n"
                                         "  model.vars.width: {choice: [8, 16]}\n  model.vars.dropuot: {float: [0, 0.5]}\n")
    result = run_dlx("search", tmp_path / "space.yaml", "--out", tmp_path / "search")
    assert_user_error(result, "space.yaml:5 at 'params.model.vars.dropuot'", "Did you mean 'dropout'?")
    assert not (tmp_path / "search").exists()


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")
                                          if not p.name.startswith("search")))
def test_shipped_specs_reference_every_var(config):
    run_dlx("config", f"configs/{config}", check=0)
