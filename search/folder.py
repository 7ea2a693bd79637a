"""The files of a search folder: `search.yaml` (the resolved space, base spec inline), `study.json` (study name,
storage and the study's identity), `trials/` and, once it ends, `best.json`. Both the search (search.api) and its worker processes
(search.worker) read them, and so do the commands that take a search folder for its best model (cli.common)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from dlx.core.errors import DlxError
from dlx.core.files import atomic_write_json, atomic_write_text, read_json
from dlx.experiment.yamlio import dump_yaml, load_yaml_mapping, read_text
from dlx.search.space import SearchSpace, parse_space
from dlx.search.study import default_storage, open_storage, open_study, redact, retrying, study_identity


def read_resolved_space(search_dir: Path) -> SearchSpace:
    path = Path(search_dir) / "search.yaml"
    return parse_space(load_yaml_mapping(path, "search space"), path, read_text(path))


def read_study_json(search_dir: Path) -> dict:
    return read_json(Path(search_dir) / "study.json", {}) or {}


def stored_storage(stored: dict, search_dir: Path) -> str:
    """The storage URL `study.json` records (the folder's study.db if none); a redacted one must be given again."""
    url = stored.get("storage")
    if not url:
        return default_storage(search_dir)
    if "***" in url:
        raise DlxError(f"this search uses the storage {url}, whose password is not stored; give it again with "
                       "--storage URL.", key="--storage")
    return url


def write_folder(search_dir: Path, space: SearchSpace, study_name: str, url: str, study_id: str) -> None:
    atomic_write_text(search_dir / "search.yaml", dump_yaml({**space.to_yaml_dict(), "name": study_name}))
    shown = None if url == default_storage(search_dir) else redact(url)
    atomic_write_json(search_dir / "study.json", {"name": study_name, "storage": shown, "study_id": study_id})
    (search_dir / "trials").mkdir(exist_ok=True)


def _storage_key(url: str, search_dir: Path) -> str:
    """What tells two storage URLs apart: the file of a sqlite/journal one (resolved), else the URL, password
    hidden (study.json keeps it hidden too)."""
    for scheme in ("sqlite:///", "journal://"):
        if url.startswith(scheme) and "?" not in url:
            return scheme + os.path.realpath(url.removeprefix(scheme))
    return redact(url)


def check_binding(search_dir: Path, stored: dict, url: str, study_name: str) -> None:
    """Refuse to run a search folder with a storage or a study name other than those of the study it belongs to,
    before the storage is opened: that study would start again at trial 0 and take the folder's trials for its
    own. Checked against study.json (nothing to check in a new folder)."""
    if not stored:
        return
    recorded = stored.get("storage") or default_storage(search_dir)
    where = Path(search_dir) / "study.json"
    if "***" not in recorded and _storage_key(recorded, search_dir) != _storage_key(url, search_dir) or \
            "***" in recorded and redact(url) != recorded:
        raise DlxError(f"this search folder belongs to study '{stored.get('name')}' in {redact(recorded)}, but "
                       f"was given --storage {redact(url)}; it was left unchanged. Give its own storage again (or "
                       f"continue it with `dlx search --resume {search_dir}`), or another --out for a new search.",
                       file=where, key="--storage")
    if stored.get("name") and stored["name"] != study_name:
        raise DlxError(f"this search folder belongs to study '{stored['name']}', but was given --name "
                       f"'{study_name}'; it was left unchanged. Leave --name out to continue it, or give another "
                       "--out for a new search.", file=where, key="--name")


def require_study(search_dir: Path, stored: dict, storage, url: str, study_name: str) -> None:
    """Refuse a storage that no longer holds the study this folder's trials belong to (an emptied journal, a
    recreated database), before a new study of that name is created in it."""
    made = stored.get("study_id") or any((Path(search_dir) / "trials").glob("[0-9]*"))
    if not made:
        return
    names = retrying(lambda: [s.study_name for s in storage.get_all_studies()])
    if study_name not in names:
        raise DlxError(f"the storage {redact(url)} has no study '{study_name}', which this search folder's trials "
                       "belong to (was it emptied, deleted or replaced?); the folder was left unchanged. Restore "
                       "the storage from a copy, or give another --out for a new search.",
                       file=Path(search_dir) / "study.json", key="--storage")


def check_identity(search_dir: Path, stored: dict, study, url: str) -> str:
    """The study's identity, refused unless it is the one study.json recorded: a study deleted and made again
    under the same name is another study, and this folder's trials are not its own."""
    found = study_identity(study)
    recorded = stored.get("study_id")
    if recorded and recorded != found:
        raise DlxError(f"study '{study.study_name}' in {redact(url)} is another study than the one this search "
                       f"folder belongs to (it was made again: identity {found}, the folder's is {recorded}); the "
                       "folder was left unchanged. Restore the storage from a copy, or give another --out for a "
                       "new search.", file=Path(search_dir) / "study.json", key="--storage")
    return found


def open_search_dir(search_dir: Path, worker: int = 0, storage_url: Optional[str] = None):
    """(space, study, seed) for a worker process joining the search in `search_dir`."""
    space = read_resolved_space(search_dir)
    stored = read_study_json(search_dir)
    url = storage_url or stored_storage(stored, search_dir)
    study = open_study(space, open_storage(url), stored.get("name") or space.name, seed_offset=worker,
                       shared=url != default_storage(search_dir))
    check_identity(search_dir, stored, study, url)
    return space, study, space.seed


TRIAL_RECORD = "trial.json"  # in a trial folder: the identity of the study and the number of the trial it holds


def _owner(run_dir: Path) -> tuple:
    record = read_json(Path(run_dir) / TRIAL_RECORD, {})
    return (record.get("study_id"), record.get("trial")) if isinstance(record, dict) else (None, None)


def claim_trial_folder(run_dir: Path, study_id: Optional[str], number: int) -> bool:
    """Refuse to run trial `number` in a folder that holds another study's trial (or a run of unknown origin): it
    is left exactly as it is. Returns whether the folder is new, so that it is recorded as this trial's once the
    trial ran (`record_trial_folder`)."""
    run_dir = Path(run_dir)
    try:
        if not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir())):
            return True
    except OSError:
        pass  # unreadable: refused below
    if study_id is not None and _owner(run_dir) == (study_id, number):
        return False
    raise DlxError(f"this trial folder holds a run of another study (or one copied in), not trial {number} of this "
                   "study; it was left unchanged, and the trial failed. Move the folder away to run the trial here.",
                   file=run_dir)


def record_trial_folder(run_dir: Path, study_id: Optional[str], number: int) -> None:
    """Write into a trial folder this trial made which study and trial it holds (see `belongs`)."""
    if study_id is not None and Path(run_dir).is_dir() and not Path(run_dir).is_symlink():
        atomic_write_json(Path(run_dir) / TRIAL_RECORD, {"study_id": study_id, "trial": number})


def belongs(run_dir: Path, study_id: Optional[str], number: int, ran: bool) -> bool:
    """Whether the end of a search may change trial `number`'s folder (prune its checkpoints, add its test score):
    only if the folder records this study's trial, or, in a folder of an older dlx that records none, if the
    trial ran (`ran`: COMPLETE or PRUNED; a trial refused a foreign folder never did)."""
    owner = _owner(run_dir)
    return ran if owner == (None, None) else owner == (study_id, number)


def best_trial(search_dir: Path) -> tuple[int, Path]:
    """(number, run folder) of the best trial, as best.json names it; its folder is found under this search folder's
    trials/, so a search folder moved or copied elsewhere still leads to its own best run."""
    best = read_json(Path(search_dir) / "best.json", {}) or {}
    if not isinstance(best, dict) or not isinstance(best.get("trial"), int):
        raise DlxError("this search folder has no finished trial to use as a model yet: no trial completed, or the "
                       f"search has not ended (it writes best.json as it ends). Finish it with `dlx search --resume "
                       f"{search_dir}`, or give one trial's folder, {Path(search_dir) / 'trials' / 'N'}.",
                       file=search_dir)
    return best["trial"], Path(search_dir) / "trials" / str(best["trial"])
