"""Ensembles of trained runs: fit the pooling on validation data (`build_ensemble`), score it (`evaluate_folder`
decides "run or ensemble" for `dlx evaluate`) and predict new inputs (`predict`)."""
from dlx.ensemble.api import (build_ensemble, check_options, evaluate_ensemble, fit_pool, member_predictions,
                              shared_data)
from dlx.ensemble.evaluate import evaluate_folder, is_ensemble_folder
from dlx.ensemble.folder import EnsembleModel, load_ensemble, load_model
from dlx.ensemble.methods import METHODS, METRICS, get_method
from dlx.ensemble.predict import predict
from dlx.ensemble.teacher import distill  # also registers the teacher loader that `distill:` specs train with
from dlx.ensemble.temperature import apply_temperature

__all__ = ["EnsembleModel", "METHODS", "METRICS", "apply_temperature", "build_ensemble", "check_options", "distill",
           "evaluate_ensemble", "evaluate_folder", "fit_pool", "get_method", "is_ensemble_folder", "load_ensemble",
           "load_model", "member_predictions", "predict", "shared_data"]
