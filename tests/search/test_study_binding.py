"""A search folder is bound to the study that made it: run again with another storage, another study name, or a
storage whose study is gone (an emptied journal), it is refused with exit 2 naming both, and its finished trial
folders are never failed, overwritten or pruned by a study that did not create them."""
from __future__ import annotations

import json
import shutil

from tests.conftest import assert_user_error, run_dlx

TWO = "sampler: random\ntrials: 2\nkeep: 5\n"


def trial_files(search_dir) -> dict:
    """Each trial folder's summary status and checkpoint names: what a wrong study destroyed."""
    found = {}
    for folder in sorted((search_dir / "trials").iterdir()):
        summary = json.loads((folder / "summary.json").read_text())
        checkpoints = sorted(p.name for p in (folder / "checkpoints").glob("*.pt"))
        found[folder.name] = (summary["status"], checkpoints)
    return found


def finished_search(make_space, tmp_path, *options):
    space = make_space(TWO)
    out = tmp_path / "S"
    run_dlx("search", space, "--out", out, *options, "--quiet", check=0)
    before = trial_files(out)
    assert [status for status, _ in before.values()] == ["finished", "finished"]
    assert all(checkpoints for _, checkpoints in before.values())
    return space, out, before, (out / "study.json").read_text()


def test_another_storage_is_refused_and_the_trials_are_kept(make_space, tmp_path):
    journal, other = tmp_path / "a.journal", tmp_path / "b.db"
    space, out, before, study_json = finished_search(make_space, tmp_path, "--storage", f"journal://{journal}")
    result = run_dlx("search", space, "--storage", f"sqlite:///{other}", "--out", out, "--quiet")
    assert_user_error(result, f"journal://{journal}", f"sqlite:///{other}", "study.json")
    assert trial_files(out) == before
    assert (out / "study.json").read_text() == study_json
    assert not other.exists()  # refused before the other storage was touched


def test_an_emptied_journal_is_refused_and_the_trials_are_kept(make_space, tmp_path):
    journal = tmp_path / "a.journal"
    space, out, before, study_json = finished_search(make_space, tmp_path, "--storage", f"journal://{journal}")
    journal.write_bytes(b"")
    for args in ([space, "--storage", f"journal://{journal}", "--out", out], ["--resume", out]):
        result = run_dlx("search", *args, "--quiet")
        assert_user_error(result, f"journal://{journal}", "no study 'space'")
        assert trial_files(out) == before
        assert (out / "study.json").read_text() == study_json


def test_another_study_name_is_refused(make_space, tmp_path):
    space, out, before, study_json = finished_search(make_space, tmp_path)
    result = run_dlx("search", space, "--out", out, "--name", "other", "--quiet")
    assert_user_error(result, "'space'", "'other'")
    assert trial_files(out) == before and (out / "study.json").read_text() == study_json


def test_a_recreated_study_of_the_same_name_is_refused(make_space, tmp_path):
    """The same storage URL and name, but a new study (the old one deleted and made again): another identity."""
    import optuna
    space, out, before, study_json = finished_search(make_space, tmp_path)
    storage = f"sqlite:///{out / 'study.db'}"
    optuna.delete_study(study_name="space", storage=storage)
    optuna.create_study(study_name="space", storage=storage, direction="maximize")
    result = run_dlx("search", "--resume", out, "--quiet")
    assert_user_error(result, "'space'", "another study")
    assert trial_files(out) == before and (out / "study.json").read_text() == study_json


def test_the_same_storage_again_continues_the_search(make_space, tmp_path):
    journal = tmp_path / "a.journal"
    space, out, before, _ = finished_search(make_space, tmp_path, "--storage", f"journal://{journal}")
    run_dlx("search", space, "--storage", f"journal://{journal}", "--out", out, "--trials", "3", "--quiet", check=0)
    after = trial_files(out)
    assert {n: after[n] for n in before} == before and len(after) == 3
    recorded = json.loads((out / "study.json").read_text())
    assert recorded["storage"] == f"journal://{journal}" and recorded["study_id"]
    moved = shutil.copytree(out, tmp_path / "copy")  # a copied folder (journal and all) still knows its study
    run_dlx("search", "--resume", moved, "--trials", "3", "--quiet", check=0)


def test_a_trial_folder_of_another_study_is_never_touched(make_space, tmp_path):
    """Defence in depth: a study whose trial number meets a trial folder it did not make (here one copied in from
    another search) fails that trial with a reason and leaves the folder as it was."""
    space, first, before, _ = finished_search(make_space, tmp_path)
    second = tmp_path / "second"
    run_dlx("search", space, "--out", second, "--trials", "1", "--quiet", check=0)
    shutil.copytree(first / "trials" / "0", second / "trials" / "1")
    result = run_dlx("search", "--resume", second, "--trials", "2", "--max-failures", "1", "--quiet")
    assert_user_error(result, "trials failed", "another study")
    assert trial_files(second)["1"] == before["0"]
