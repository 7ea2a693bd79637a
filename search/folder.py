"""The files of a search folder: `search.yaml` (the resolved space, base spec inline), `study.json` (study name
and storage), `trials/` and, once it ends, `best.json`. Both the search (search.api) and its worker processes
(search.worker) read them, and so do the commands that take a search folder for its best model (cli.common)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from dlx.core.errors import DlxError
from dlx.core.files import atomic_write_json, atomic_write_text, read_json
from dlx.experiment.yamlio import dump_yaml, load_yaml_mapping, read_text
from dlx.search.space import SearchSpace, parse_space
from dlx.search.study import default_storage, open_storage, open_study, redact


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


def write_folder(search_dir: Path, space: SearchSpace, study_name: str, url: str) -> None:
    atomic_write_text(search_dir / "search.yaml", dump_yaml({**space.to_yaml_dict(), "name": study_name}))
    shown = None if url == default_storage(search_dir) else redact(url)
    atomic_write_json(search_dir / "study.json", {"name": study_name, "storage": shown})
    (search_dir / "trials").mkdir(exist_ok=True)


def open_search_dir(search_dir: Path, worker: int = 0, storage_url: Optional[str] = None):
    """(space, study, seed) for a worker process joining the search in `search_dir`."""
    space = read_resolved_space(search_dir)
    stored = read_study_json(search_dir)
    url = storage_url or stored_storage(stored, search_dir)
    study = open_study(space, open_storage(url), stored.get("name") or space.name, seed_offset=worker,
                       shared=url != default_storage(search_dir))
    return space, study, space.seed


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
