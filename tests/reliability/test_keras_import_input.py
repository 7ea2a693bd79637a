"""`dlx import keras` on hostile input: special files and oversized archives are refused at once, within a memory
bound; malformed JSON is one error naming the file and the JSON path; the spec it writes is one dlx accepts (the
`dlx summary` check), or nothing is written and the Keras layer is named; odd file names keep the YAML header a
comment; the spec is written only to a regular file, and a full disk is one clean error."""
from __future__ import annotations

import json
import os
import stat
import tracemalloc
import zipfile

import pytest
import yaml

from dlx.archs import import_keras
from dlx.archs.check import load_spec
from dlx.core.errors import DlxError
from tests.conftest import assert_user_error, run_dlx
from tests.reliability.keras_files import called, functional, keras_layer, sequential, small_cnn, write_keras
from tests.tmpfs import fill, tmpfs

QUICK = 60  # seconds: a refusal is immediate; a hang or an unbounded read runs into this


def dense(name="dense", units=2, **config):
    return keras_layer("Dense", name, units=units, **config)


# --- item 3: what is read is a regular file, of bounded size ------------------------------------------------

@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom", "fifo", "folder"])
def test_special_files_are_refused_without_reading_them(special, tmp_path):
    path = {"fifo": tmp_path / "model.keras", "folder": tmp_path}.get(special, special)
    if special == "fifo":
        os.mkfifo(path)  # nothing ever writes to it: opening it for reading the usual way waits forever
    result = run_dlx("import", "keras", path, "--out", tmp_path / "spec.yaml", timeout=QUICK)
    assert_user_error(result, str(path), "not a regular file")
    assert not (tmp_path / "spec.yaml").exists()


def test_a_json_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "model.json"
    with open(path, "wb") as handle:
        handle.truncate(2**33)  # 8 GiB, sparse: reading it would fill memory
    assert_user_error(run_dlx("import", "keras", path, timeout=QUICK), "model.json", "larger than", "MiB")


def bomb(members: int) -> str:
    """A config.json that parses into millions of small objects: a few kilobytes compressed."""
    return '{"class_name": "Sequential", "config": {"layers": [' + "[]," * members + "1]}}"


def test_a_keras_archive_whose_config_expands_past_the_limit_is_refused_within_a_memory_bound(tmp_path):
    path = write_keras(tmp_path / "bomb.keras", bomb(7 * 2**20))  # 21 MiB of JSON: 7 million lists
    assert path.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(DlxError, match="config.json is larger than 16 MiB") as error:
            import_keras(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(error.value)
    assert peak < 64 * 2**20, f"importing a {path.stat().st_size}-byte archive took {peak / 2**20:.0f} MiB"


def test_a_keras_archive_that_understates_its_config_size_is_read_no_further_than_the_limit(tmp_path):
    """The size in the zip's headers is the archive's claim: dlx reads at most the limit, whatever it says."""
    path = write_keras(tmp_path / "liar.keras", bomb(7 * 2**20))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo("config.json").header_offset
    central = data.rfind(b"config.json") - 46  # the central directory's entry: its name follows 46 bytes of fields
    assert data[local:local + 4] == b"PK\x03\x04" and data[central:central + 4] == b"PK\x01\x02"
    for size_field in (local + 22, central + 24):
        data[size_field:size_field + 4] = (1000).to_bytes(4, "little")  # "1,000 bytes uncompressed"
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        with pytest.raises(DlxError, match="liar.keras"):
            import_keras(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"took {peak / 2**20:.0f} MiB"


# --- item 9: malformed JSON is one error naming the file and the JSON path ----------------------------------

def deep(depth: int) -> str:
    return '{"class_name": "Sequential", "config": {"layers": ' + "[" * depth + "]" * depth + "}}"


def long_integer(digits: int) -> str:
    text = json.dumps(small_cnn())
    return text.replace('"filters": 4', '"filters": ' + "7" * digits)


@pytest.mark.parametrize("text,fragments", [
    ('{"class_name": "Sequential", "config": [1]}', ["at 'config'", "expected a JSON object", "got list"]),
    ('{"class_name": "Sequential", "config": {"layers": {"a": 1}}}', ["at 'config.layers'", "expected a JSON list"]),
    ('{"class_name": "Sequential", "config": {"layers": [1, 2]}}', ["at 'config.layers[0]'", "expected a JSON object"]),
    (json.dumps(sequential({"class_name": ["Dense"]})), ["at 'config.layers[1].class_name'", "expected a JSON string"]),
    (json.dumps(sequential({"class_name": "Dense", "config": [7]})), ["at 'config.layers[1].config'"]),
    (json.dumps(functional({**dense(), "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__",
                                                                     "config": {"keras_history": 5}}]}]},
                           output="dense")),
     ["at 'config.layers[1].inbound_nodes[0].args[0].config.keras_history'"]),
    (deep(100_000), ["nested deeper than"]),
    (deep(200), ["nested deeper than", "config.layers"]),
    (long_integer(5000), ["at 'config.layers[1].config.filters'", "5000 digits"]),
    (json.dumps(small_cnn()).replace('"units": 2', '"units": NaN'), ["at 'config.layers[3].config.units'", "NaN"]),
])
@pytest.mark.parametrize("container", ["json", "keras"])
def test_malformed_json_is_one_error_naming_the_file_and_the_json_path(text, fragments, container, tmp_path):
    path = tmp_path / f"model.{container}"
    if container == "keras":
        write_keras(path, text)
    else:
        path.write_text(text)
    with pytest.raises(DlxError) as error:
        import_keras(path)
    for fragment in [str(path), *fragments]:
        assert fragment in str(error.value)


def test_deep_nesting_through_the_cli_is_one_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text(deep(100_000))
    assert_user_error(run_dlx("import", "keras", path, timeout=QUICK), "deep.json", "nested deeper than")


# --- item 8: what is written is a spec dlx accepts ----------------------------------------------------------

def cycle() -> dict:
    """Two layers each fed by the other: no Keras model, but a JSON file can say so."""
    return functional(called("Dense", "a", ["b"], units=4), called("Dense", "b", ["a"], units=4), output="b")


@pytest.mark.parametrize("config,fragments", [
    (cycle(), ["layer 1 'a' (Dense)", "'b'"]),
    (sequential(keras_layer("Conv2D", "conv", filters=4, kernel_size=[3, 3]), dense("head")),
     ["layer 2 'head' (Dense)", "needs flat features"]),
    (sequential(*[keras_layer("Activation", f"relu{i}", activation="relu") for i in range(10_001)]),
     ["10001 layers", "at most 10000"]),
    (sequential(keras_layer("Flatten", "flatten"), dense(), shape=(-8, 6, 3)), ["input shape", "-8"]),
    (sequential(keras_layer("Flatten", "flatten"), dense(), shape=(0, 6, 3)), ["input shape", "0"]),
    (sequential(keras_layer("Flatten", "flatten"), dense(), shape=(True, 6, 3)), ["input shape", "True"]),
    (sequential(keras_layer("Flatten", "flatten"), dense(), shape=(100_000, 100_000, 3)), ["input shape"]),
    (sequential(keras_layer("Flatten", "flatten"), dense(units=10**9)), ["layer 2 'dense' (Dense)", "1000000000"]),
    (sequential(keras_layer("Conv2D", "wide", filters=4, kernel_size=[9, 9]), keras_layer("Flatten", "f"),
                dense()), ["layer 1 'wide' (Conv2D)"]),
])
def test_a_spec_dlx_would_refuse_is_not_written_and_the_keras_layer_is_named(config, fragments, tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(config))
    result = run_dlx("import", "keras", path, "--out", tmp_path / "spec.yaml", timeout=QUICK)
    assert_user_error(result, "model.json", *fragments)
    assert not (tmp_path / "spec.yaml").exists()


def test_an_imported_spec_passes_the_checks_of_dlx_summary(tmp_path):
    path = write_keras(tmp_path / "m.keras", small_cnn())
    run_dlx("import", "keras", path, "--out", tmp_path / "spec.yaml", check=0)
    summary = json.loads(run_dlx("summary", tmp_path / "spec.yaml", "--input-shape", "6,6,3", "--classes", "2",
                                 "--json", check=0).stdout)
    assert summary["trainable_params"] == 3 * 3 * 3 * 4 + 4 + 4 * 4 * 4 * 2 + 2


def test_an_input_reference_of_a_functional_model_still_imports(tmp_path):
    config = functional(called("Dense", "a", ["input_layer"], units=4), called("Dense", "b", ["input_layer"], units=4),
                        called("Add", "sum", ["a", "b"]), called("Dense", "out", ["sum"], units=3), output="out")
    path = tmp_path / "model.json"
    path.write_text(json.dumps(config))
    result = run_dlx("import", "keras", path, check=0)
    assert yaml.safe_load(result.stdout)["model"]["layers"][-1] == {"Dense": {"units": "classes"}}


# --- item 10: the file's name in the header -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["new\nline.keras", "hash # and: colon.keras", "esc\x1b[31mape.keras",
                                  "line\u2028separator.keras", "quote'\"s.keras", "bad-\udcff-byte.keras",
                                  "next\x85line\r.keras"])
def test_any_file_name_leaves_a_spec_that_parses_and_names_the_file(name, tmp_path):
    path = write_keras(tmp_path / name, small_cnn())
    run_dlx("import", "keras", path, "--out", tmp_path / "spec.yaml", check=0)
    text = (tmp_path / "spec.yaml").read_text(encoding="utf-8")
    spec = yaml.safe_load(text)
    assert spec["name"] == "sequential" and spec["model"]["layers"][-1] == {"Dense": {"units": "classes"}}
    assert [line for line in text.splitlines() if line.startswith("# Imported from ")] == [
        f"# Imported from {name!r} by `dlx import keras`: the architecture only, no weights."]
    assert load_spec(tmp_path / "spec.yaml").model.layers == spec["model"]["layers"]


# --- items 2 and 7: where the spec is written ---------------------------------------------------------------

def test_out_onto_a_symlink_is_refused_and_its_target_is_untouched(tmp_path):
    path = write_keras(tmp_path / "m.keras", small_cnn())
    target = tmp_path / "precious.yaml"
    target.write_text("name: mine\n")
    (tmp_path / "link.yaml").symlink_to(target)
    result = run_dlx("import", "keras", path, "--out", tmp_path / "link.yaml", timeout=QUICK)
    assert_user_error(result, "link.yaml", "symbolic link")
    assert (tmp_path / "link.yaml").is_symlink() and target.read_text() == "name: mine\n"


def test_out_onto_a_device_is_refused_and_the_device_stays(tmp_path):
    path = write_keras(tmp_path / "m.keras", small_cnn())
    device = tmp_path / "full"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # /dev/full's numbers, in a folder of the test's
    except PermissionError:
        pytest.skip("making a device node needs root")
    result = run_dlx("import", "keras", path, "--out", device, timeout=QUICK)
    assert_user_error(result, str(device), "device")
    assert stat.S_ISCHR(os.lstat(device).st_mode)


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs holding an old spec and filled up: a real ENOSPC for the next write."""
    with tmpfs(tmp_path / "small", "64k") as folder:
        (folder / "spec.yaml").write_text("name: old\n")
        fill(folder)
        yield folder


def test_a_full_disk_is_one_error_and_the_old_spec_stays(full_disk, tmp_path):
    path = write_keras(tmp_path / "m.keras", small_cnn())
    result = run_dlx("import", "keras", path, "--out", full_disk / "spec.yaml", timeout=QUICK)
    assert_user_error(result, str(full_disk / "spec.yaml"), "disk is full")
    assert (full_disk / "spec.yaml").read_text() == "name: old\n"
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "spec.yaml"]
