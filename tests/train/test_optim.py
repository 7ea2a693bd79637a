"""Each optimiser and scheduler name in the spec builds the torch class it names, through one registry each."""
from __future__ import annotations

import pytest
import torch

from dlx.core.errors import DlxError
from dlx.experiment.schema import OptimizerSpec, SchedulerSpec
from dlx.train.optim import OPTIMIZERS, SCHEDULERS, make_optimizer, make_scheduler

OPTIMIZER_CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                     "rmsprop": torch.optim.RMSprop}
SCHEDULER_CLASSES = {"none": torch.optim.lr_scheduler.LambdaLR, "cosine": torch.optim.lr_scheduler.LambdaLR,
                     "step": torch.optim.lr_scheduler.LambdaLR, "onecycle": torch.optim.lr_scheduler.OneCycleLR}


def test_the_registries_hold_exactly_the_names_the_spec_accepts():
    assert sorted(OPTIMIZERS.names()) == sorted(OptimizerSpec.model_fields["name"].annotation.__args__)
    assert sorted(SCHEDULERS.names()) == sorted(SchedulerSpec.model_fields["name"].annotation.__args__)


@pytest.mark.parametrize("name", sorted(OPTIMIZER_CLASSES))
def test_each_optimizer_name_builds_its_torch_class(name):
    optimizer = make_optimizer(torch.nn.Linear(3, 2), OptimizerSpec(name=name, lr=0.01, weight_decay=0.001))
    assert type(optimizer) is OPTIMIZER_CLASSES[name]
    assert optimizer.param_groups[0]["lr"] == 0.01 and optimizer.param_groups[0]["weight_decay"] == 0.001


@pytest.mark.parametrize("name", sorted(SCHEDULER_CLASSES))
def test_each_scheduler_name_builds_its_torch_class(name):
    optimizer = torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    scheduler = make_scheduler(optimizer, SchedulerSpec(name=name), 0.1, steps_per_epoch=5, epochs=2)
    assert type(scheduler) is SCHEDULER_CLASSES[name]


def test_an_unknown_optimizer_name_is_one_did_you_mean_error():
    with pytest.raises(DlxError, match=r"unknown optimizer 'adamm'; expected one of: .*Did you mean 'adam"):
        OPTIMIZERS.get("adamm")
