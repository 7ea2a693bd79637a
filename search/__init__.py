"""Hyperparameter search on Optuna: `run_search(space_path, out=..., storage=..., workers=...)`."""
from search.api import SearchRequest, SearchResult, run_search
from search.devices import parse_devices
from search.display import TrialDisplay
from search.pareto import front_of, pick
from search.space import SearchSpace, load_space, parse_duration

__all__ = ["SearchRequest", "SearchResult", "SearchSpace", "TrialDisplay", "front_of", "load_space",
           "parse_devices", "parse_duration", "pick", "run_search"]
