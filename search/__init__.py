"""Hyperparameter search on Optuna: `run_search(space_path, out=..., storage=..., workers=...)`."""
from search.api import SearchRequest, SearchResult, run_search
from search.display import TrialDisplay
from search.space import SearchSpace, load_space, parse_duration

__all__ = ["SearchRequest", "SearchResult", "SearchSpace", "TrialDisplay", "load_space", "parse_duration",
           "run_search"]
