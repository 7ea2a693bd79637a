"""Hostile input: mutated specs and search spaces (dropped, renamed, retyped, duplicated keys; extreme numbers;
deep nesting; huge lists; alias bombs; non-UTF-8 bytes; empty files) either validate or raise one DlxError
(exit code 2 from the CLI) whose one paragraph names the key path or line, quickly, never a traceback."""
from __future__ import annotations

import copy
import math
import re
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dlx.cli.main import app
from dlx.core.errors import DlxError
from dlx.archs.check import load_spec
from tests.conftest import assert_user_error, run_dlx
from tests.reliability.conftest import DIGITS

SPEC = yaml.safe_load(DIGITS.read_text())
SPACE = {"base": "digits.yaml", "overrides": {"train.epochs": 2}, "metric": "val_accuracy", "sampler": "tpe",
         "pruner": "median", "trials": 4, "keep": 2,
         "params": {"train.optimizer.lr": {"float": [1.0e-3, 3.0e-2], "log": True},
                    "train.batch_size": {"choice": [32, 64]}, "model.vars.width": {"int": [16, 48], "step": 16}}}
EXTREMES = [None, "", "text", [], {}, True, 0, -1, 1, 1e308, -1e308, 10**30, -(10**30), 2**64, math.nan, math.inf,
            -math.inf, 1e-320, "${nope}", "${width ** 64}", "${'a' * 100000}", "../../escape", "x" * 300, [1] * 50]
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
MAX_SECONDS = 30  # per input (a hang guard); the limits keep each answer near or under a second when idle


def paths_of(node, prefix=()):
    """Every key path in a nested mapping/list, as tuples."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths_of(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths_of(value, prefix + (index,))
    return found


def nested(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutated(draw, base: dict):
    """(document, the key paths an error may name) for one random mutation of `base`."""
    data = copy.deepcopy(base)
    path = draw(st.sampled_from(paths_of(data)))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    kind = draw(st.sampled_from(["drop", "rename", "retype", "retype", "nest", "huge_list", "wrap"]))
    if kind == "drop":
        del parent[last]
    elif kind == "rename" and isinstance(parent, dict):
        new = draw(st.sampled_from([f"{last}x", str(last).upper(), "", " ", "1", "<<", "${x}", "a.b"]))
        parent[new] = parent.pop(last)
        path = [path[:-1] + (new,)] + ([] if len(path) > 1 else [(last,)])  # a renamed section may be missing
    elif kind == "nest":
        parent[last] = nested(draw(st.integers(1, 80)))
    elif kind == "huge_list":
        parent[last] = f"__HUGE_LIST_{draw(st.sampled_from([10**3, 3 * 10**4, 10**6]))}__"  # written by text_of
    elif kind == "wrap":
        parent[last] = {str(last): parent[last]}
    else:
        parent[last] = draw(st.sampled_from(EXTREMES))
    return data, path if isinstance(path, list) else [path]


def text_of(data) -> str:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**9)
    return re.sub(r"__HUGE_LIST_(\d+)__", lambda m: "[" + "0, " * (int(m.group(1)) - 1) + "0]", text)


@st.composite
def text_damage(draw, base: dict):
    """YAML text damaged below the level of keys: duplicated lines, cut off, stray bytes, aliases, empty."""
    text = text_of(base)
    lines = text.splitlines(keepends=True)
    kind = draw(st.sampled_from(["duplicate", "truncate", "bytes", "bomb", "empty", "flow_bomb"]))
    if kind == "duplicate":
        i = draw(st.integers(0, len(lines) - 1))
        return (text if lines[i].startswith(" ") else "".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])).encode()
    if kind == "truncate":
        return text.encode()[: draw(st.integers(0, len(text)))]
    if kind == "bytes":
        raw = bytearray(text.encode())
        at = draw(st.integers(0, len(raw)))
        return bytes(raw[:at]) + draw(st.binary(min_size=1, max_size=8)) + bytes(raw[at:])
    if kind == "bomb":
        levels, width = draw(st.integers(2, 9)), draw(st.integers(2, 10))
        bomb = "l0: &l0 [" + ", ".join(["lol"] * width) + "]\n" + "".join(
            f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]\n" for i in range(1, levels))
        return (bomb + text.replace("  vars:\n", f"  vars:\n    bomb: *l{levels - 1}\n")).encode()
    if kind == "flow_bomb":
        return (text + "extra: [" + "1, " * draw(st.sampled_from([10**4, 3 * 10**5])) + "1]\n").encode()
    return draw(st.sampled_from([b"", b"\n", b"   \n", b"# only a comment\n", b"---\n", b"~\n", b"[]\n", b"42\n"]))


def key_parts(key: str) -> tuple:
    """'model.layers[0].Conv2D' → ('model', 'layers', 0, 'Conv2D'), comparable with a touched path."""
    return tuple(int(index) if index else name for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", str(key)))


def names_the_touched_key(key: str, touched: list[tuple]) -> bool:
    return any(names_the_key(key, path) for path in touched)


def names_the_key(key: str, touched: tuple) -> bool:
    """The error's key path is the touched one, above it (a section now missing or of the wrong type) or below it
    (a wrapped value's inner key). A changed layer or var may also surface at any layer it feeds (shapes flow
    down the chain, ${vars} are used in layers), so under `model` any layer key counts; `params` for spaces."""
    got = key_parts(key)
    want = key_parts("".join(f"[{t}]" if isinstance(t, int) else f".{t}" for t in touched))  # as dlx writes keys
    shorter = min(len(got), len(want))
    if got[:shorter] == want[:shorter]:
        return True
    in_model = want[:2] in {("model", "layers"), ("model", "vars")}
    return (in_model and got[:2] == ("model", "layers")) or got[:1] == ("params",)


def check_outcome(load, path: Path, touched=None) -> str:
    """Call `load(path)`; it must return or raise DlxError, quickly, with a located one-paragraph message."""
    started = time.monotonic()
    try:
        load(path)
        outcome = "valid"
    except DlxError as exc:
        message = exc.render()
        assert "\n" not in message and "Traceback" not in message, message
        assert exc.file is not None, message  # every error names the file (or the CLI source) it comes from
        if exc.key is None:  # file-level problems: size, encoding, YAML syntax (with its line), empty file
            assert exc.line or any(word in message for word in ("YAML", "UTF-8", "empty", "bytes", "mapping")), message
        elif touched:
            assert names_the_touched_key(exc.key, touched), (touched, message)
        outcome = "error"
    assert time.monotonic() - started < MAX_SECONDS, f"took {time.monotonic() - started:.1f} s"
    return outcome


def check_file(load, folder: Path, raw: bytes, touched=None) -> str:
    """`check_outcome` on `raw` written as folder/spec.yaml, beside the digits spec a search space names as base."""
    (folder / "digits.yaml").write_text(DIGITS.read_text())
    path = folder / "spec.yaml"
    path.write_bytes(raw)
    return check_outcome(load, path, touched)


def run_property(strategy, check, examples: int) -> dict:
    """Run `check` on `examples` inputs drawn from `strategy`; returns how many validated and how many were
    refused, so each test asserts on its own how much it tried."""
    outcomes = {"valid": 0, "error": 0}

    @settings(max_examples=examples, **SETTINGS)
    @given(case=strategy)
    def prop(case):
        outcomes[check(case)] += 1

    prop()
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("kind, examples, refused", [("spec", 120, 30), ("space", 60, 15)])
def test_mutated_files_validate_or_name_the_key(kind, examples, refused, tmp_path_factory):
    from dlx.search.space import load_space
    load, base = (load_spec, SPEC) if kind == "spec" else (load_space, SPACE)

    def check(case):
        data, touched = case
        return check_file(load, tmp_path_factory.mktemp(kind), text_of(data).encode(), touched)
    outcomes = run_property(mutated(base), check, examples=examples)
    assert sum(outcomes.values()) >= examples * 5 // 6 and outcomes["error"] >= refused, outcomes


def test_damaged_spec_files_validate_or_fail_cleanly(tmp_path_factory):
    def check(raw):
        return check_file(load_spec, tmp_path_factory.mktemp("spec"), raw)
    outcomes = run_property(text_damage(SPEC), check, examples=60)
    assert sum(outcomes.values()) >= 50 and outcomes["error"] >= 20, outcomes


@pytest.mark.slow
def test_the_cli_answers_mutated_specs_with_exit_0_or_2(tmp_path_factory):
    def check(case):
        data, _ = case
        path = tmp_path_factory.mktemp("cli") / "spec.yaml"
        path.write_text(text_of(data))
        result = CliRunner().invoke(app, ["config", str(path)])
        assert result.exit_code in (0, 2), f"exit {result.exit_code}: {result.exception!r}\n{result.output}"
        if result.exit_code == 2:
            text = " ".join(result.output.split())
            assert text.startswith("error:") and text.count("error:") == 1 and "Traceback" not in text, text
            return "error"
        return "valid"
    outcomes = run_property(mutated(SPEC), check, examples=30)
    assert sum(outcomes.values()) >= 25 and outcomes["error"] >= 5, outcomes


# ---- named limits, each through a real `dlx` process ----

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))


LIMIT_CASES = [  # (test id, spec text, fragments the message must hold)
    ("huge_list", "name: x\nmodel:\n  layers: [" + "Flatten, " * 10**6 + "]\n", ["limited to 1000000 bytes"]),
    ("long_flow_list", "name: x\nmodel:\n  layers: [" + "1," * 200_000 + "1]\n", ["more than 20000 values"]),
    ("alias_bomb", BOMB + "model: {layers: *i}\n", ["once aliases are expanded", "refusing a possible alias bomb"]),
    # 101 aliases, few values: one over MAX_ALIASES (100), written as a number, not read from the limit under test
    ("many_aliases", "w: &w 8\n" + "".join(f"k{i}: *w\n" for i in range(101))
     + "model: {layers: [Flatten, {Dense: 10}]}\n", ["more than 100 aliases", "alias bomb"]),
    ("repeat_million", "model:\n  layers:\n    - Repeat: {times: 1000000, layers: [Flatten]}\n    - Dense: 10\n",
     ["model.layers[0].Repeat.times", "1000"]),
    ("nested_repeat", "model:\n  layers:\n    - Repeat: {times: 1000, layers: [{Repeat: {times: 1000, layers: "
     "[Flatten]}}]}\n", ["more than 10000 layers"]),
    ("text_bomb", "model:\n  vars: {w: 4}\n  layers:\n    - Dense: \"${'9' * 10**9}\"\n",
     ["longer than 10000 characters", "model.layers[0].Dense"]),
    ("deep", "model: " + "[" * 200 + "]" * 200 + "\n", ["nesting deeper than 50"]),
    ("duplicate", "model: {layers: [Flatten, {Dense: 10}]}\ntrain: {epochs: 1}\ntrain: {epochs: 100000}\n",
     ["'train' appears twice", "line 3"]),
    ("not_utf8", None, ["not valid UTF-8"]),
    ("empty", "", ["the spec file is empty"]),
    ("long_name", None, ["can't read the spec", "File name too long"]),
    ("escape_name", "name: ../../../tmp/evil\nmodel: {layers: [Flatten, {Dense: 10}]}\n",
     ["at 'name'", "outside the output folder"]),
]


@pytest.mark.parametrize("name, text, fragments", LIMIT_CASES, ids=[case[0] for case in LIMIT_CASES])
def test_limits_refuse_quickly_through_the_cli(name, text, fragments, tmp_path):
    path = tmp_path / ("x" * 300 + ".yaml" if name == "long_name" else "spec.yaml")
    if name == "long_name":
        pass
    elif text is None:
        path.write_bytes(b"name: caf\xe9\nmodel: {layers: [Flatten]}\n")
    else:
        path.write_text(text)
    started = time.monotonic()
    result = run_dlx("config", path, timeout=120)
    assert_user_error(result, str(path), *fragments)
    assert time.monotonic() - started < 60


def test_run_folders_stay_inside_the_output_folder(tmp_path):
    from dlx.train.rundir import new_run_dir
    for name in ("../x", "a/../../b", "/etc", "x/y"):
        with pytest.raises(DlxError, match="outside"):
            new_run_dir(tmp_path / "runs", name)
    spec = tmp_path / "spec.yaml"
    spec.write_text("model: {layers: [Flatten, {Dense: 10}]}\n")
    result = CliRunner().invoke(app, ["config", str(spec), "--set", "name=../../outside"])
    assert result.exit_code == 2 and "at 'name'" in " ".join(result.output.split())
    assert not (tmp_path / "outside").exists()


def test_inline_base_errors_name_the_base_key(tmp_path):
    from dlx.search.space import load_space
    path = tmp_path / "space.yaml"
    path.write_text("base: {name: x}\ntrials: 2\nparams:\n  train.optimizer.lr: {float: [0.001, 0.01]}\n")
    with pytest.raises(DlxError) as caught:
        load_space(path)
    assert caught.value.key == "base.model", caught.value.render()


def test_a_base_name_too_long_is_refused_at_the_base_key(tmp_path):
    from dlx.search.space import load_space
    path = tmp_path / "space.yaml"
    path.write_text(f"base: {'x' * 300}.yaml\ntrials: 2\nparams:\n  train.optimizer.lr: {{float: [0.001, 0.01]}}\n")
    with pytest.raises(DlxError) as caught:
        load_space(path)
    assert caught.value.key == "base" and caught.value.file == str(path), caught.value.render()


@pytest.mark.parametrize("override", ["train.epochs: -1", "train.epochz: 2", "train.epochs.deeper: 2"])
def test_override_errors_name_the_space_file_and_the_override(override, tmp_path):
    from dlx.search.space import load_space
    (tmp_path / "digits.yaml").write_text(DIGITS.read_text())
    path = tmp_path / "space.yaml"
    path.write_text(f"base: digits.yaml\noverrides: {{{override}}}\ntrials: 2\n"
                    "params:\n  train.optimizer.lr: {float: [0.001, 0.01]}\n")
    with pytest.raises(DlxError) as caught:
        load_space(path)
    key = override.split(":")[0]
    assert caught.value.file == str(path) and caught.value.key == f"overrides.{key}", caught.value.render()
