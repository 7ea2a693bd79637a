"""One registry entry per dataset: its name, its static shape and classes, and a loader that exists."""
from __future__ import annotations

import pytest

from dlx.experiment.datasets import DATASETS
from dlx.experiment.schema import DataSpec
from dlx.train.data import load_splits


@pytest.mark.parametrize("name", DATASETS.names())
def test_each_dataset_names_a_loader_that_exists(name):
    assert callable(DATASETS.get(name).load_function())


def test_static_shape_and_classes_are_what_the_loader_gives():
    entry, splits = DATASETS.get("digits"), load_splits(DataSpec(dataset="digits"))
    assert (splits.input_shape, splits.classes) == (entry.input_shape, entry.classes)


def test_dataset_names_match_as_every_registry_matches_them():
    assert DataSpec(dataset="Fashion-MNIST").dataset == "fashion_mnist"
