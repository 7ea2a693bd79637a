"""Hyperparameter search on Optuna: `run_search(space_path, out=..., storage=..., workers=...)`."""
from __future__ import annotations


def run_search(*args, **kwargs):
    from search.api import run_search as _run_search
    return _run_search(*args, **kwargs)
