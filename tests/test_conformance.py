"""Every registered space and strategy passes the shipped conformance checks."""

from __future__ import annotations

import pytest

from nasforge.estimators.tabular import TabularEstimator
from nasforge.spaces import create_space, list_spaces
from nasforge.strategies import create_strategy, list_strategies
from nasforge.testing import check_space, check_strategy

SMALL = {"nb201": {"channels": 4, "cells_per_stage": 1}, "darts": {"channels": 4, "cells": 3}, "mobilenet": {},
         "regnet": {}, **{f"anynet_{level}": {} for level in "abcde"}}


@pytest.mark.parametrize("name", list_spaces())
def test_space_conforms(name):
    check_space(create_space(name, **SMALL[name]), input_shape=(3, 16, 16))


def test_user_space_conforms(grid_space):
    check_space(grid_space, input_shape=(1, 4, 4))


# GP fits its model after 10 startup trials and takes ~0.1 s a trial after: fewer queries keep it quick
QUERIES = {"optuna:gp": 14}


@pytest.mark.parametrize("name", list_strategies())
def test_strategy_conforms_on_nb201(name, nb201_table):
    space = create_space("nb201")
    check_strategy(lambda seed: create_strategy(name, space, seed=seed), TabularEstimator(nb201_table),
                   queries=QUERIES.get(name, 30))


@pytest.mark.parametrize("name", list_strategies())
def test_strategy_conforms_on_a_user_space(name, grid_space, grid_table):
    check_strategy(lambda seed: create_strategy(name, grid_space, seed=seed), TabularEstimator(grid_table),
                   queries=QUERIES.get(name, 30))
