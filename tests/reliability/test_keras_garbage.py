"""`dlx import keras` on `.keras` archives whose config.json is garbage, cut short, deeply nested, very large or
retyped at any key: the import either writes a spec that `dlx summary` accepts at the header's input shape, or
is refused with exit code 2 and one paragraph naming the file, having written nothing. Run in-process (Typer's
CliRunner) on archives built by hand (tests/reliability/keras_files.py)."""
from __future__ import annotations

import copy
import json
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dlx.cli.main import app
from tests.conftest import assert_user_error
from tests.reliability.keras_files import called, functional, small_cnn, write_keras

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.sampled_from([0, -1, 2**63, 10**30]) |
    st.floats() | st.text(max_size=8) | st.sampled_from(["Dense", "Conv2D", "__keras_tensor__", "input_layer"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def branchy() -> dict:
    """A functional model with a branch and a merge: names, `inputs` and keras_history to damage."""
    return functional(called("Dense", "a", ["input_layer"], units=4), called("Dense", "b", ["input_layer"], units=4),
                      called("Add", "sum", ["a", "b"]), called("Dense", "out", ["sum"], units=3), output="out")


BASES = [small_cnn(), branchy()]


def paths_of(node, prefix=()) -> list[tuple]:
    found = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        found += paths_of(value, prefix + (key,))
    return found


def replaced(base: dict, path: tuple, value) -> dict:
    data = copy.deepcopy(base)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return data


@st.composite
def config_texts(draw) -> str | bytes:
    """One damaged config.json: random bytes, a valid one cut short, a key retyped, nested thousands deep, a
    key given a 10,000-item list or a 5,000-digit number, or a layer of another kind."""
    base = draw(st.sampled_from(BASES))
    text = json.dumps(base)
    path = draw(st.sampled_from(paths_of(base)))
    how = draw(st.sampled_from(["bytes", "cut", "retype", "deep", "large", "digits", "kind"]))
    event(how)
    if how == "bytes":
        return draw(st.binary(max_size=300))
    if how == "cut":
        return text[:draw(st.integers(0, len(text) - 1))]
    if how == "retype":
        return json.dumps(replaced(base, path, draw(JSON_VALUES)))
    if how == "deep":
        depth = draw(st.sampled_from([90, 101, 1000, 100_000]))
        return json.dumps(replaced(base, path, "NEST")).replace('"NEST"', "[" * depth + "]" * depth, 1)
    if how == "large":
        return json.dumps(replaced(base, path, [draw(JSON_VALUES)] * 10_000))
    if how == "digits":
        return json.dumps(replaced(base, path, "NUMBER")).replace('"NUMBER"', "9" * 5000, 1)
    index = draw(st.integers(1, len(base["config"]["layers"]) - 1))
    kind = draw(st.sampled_from(["Conv2D", "Dense", "Flatten", "MaxPooling2D", "Add", "Reshape", "Concatenate"]))
    return json.dumps(replaced(base, ("config", "layers", index, "class_name"), kind))


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}")
    return result


@given(config=config_texts())
@settings(max_examples=80, **SETTINGS)
def test_any_config_json_imports_to_an_accepted_spec_or_is_one_clean_error(config):
    with tempfile.TemporaryDirectory(prefix="keras-garbage-") as folder:
        model, spec = write_keras(Path(folder) / "model.keras", config), Path(folder) / "spec.yaml"
        result = invoke("import", "keras", model, "--out", spec)
        event(f"exit {result.exit_code}")
        if result.exit_code != 0:
            assert_user_error(result, "model.keras")
            assert not spec.exists()
            return
        check = re.search(r"--input-shape (\S+)(?: --classes (\d+))?`", result.output)
        assert check, result.output
        summary = invoke("summary", spec, "--input-shape", check[1], "--classes", check[2] or "1")
        assert summary.exit_code == 0, f"dlx refuses the spec it wrote:\n{spec.read_text()}\n{summary.output}"


def test_the_untouched_bases_import_and_summarise():
    """The property's control: its two models, undamaged, import and summarise (exit 0 is reachable)."""
    for base in BASES:
        with tempfile.TemporaryDirectory(prefix="keras-base-") as folder:
            result = invoke("import", "keras", write_keras(Path(folder) / "m.keras", base), "--out",
                            Path(folder) / "spec.yaml")
            assert result.exit_code == 0, result.output
