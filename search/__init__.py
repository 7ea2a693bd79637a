"""Hyperparameter search on Optuna: `run_search(space_path, out=..., storage=..., workers=...)`."""
from dlx.search.api import SearchInterrupted, SearchRequest, SearchResult, run_search
from dlx.search.devices import parse_devices
from dlx.search.display import TrialDisplay
from dlx.search.pareto import front_of, pick
from dlx.search.space import SearchSpace, load_space, parse_duration
from dlx.search.study import default_storage, requeued

__all__ = ["SearchInterrupted", "SearchRequest", "SearchResult", "SearchSpace", "TrialDisplay", "default_storage",
           "front_of", "load_space", "parse_devices", "parse_duration", "pick", "requeued", "run_search"]
