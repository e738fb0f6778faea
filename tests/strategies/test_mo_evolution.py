"""Multi-objective regularized evolution: the archive is the Pareto front of all results told, the population
ages, parents come from the front, and every architecture is asked once."""

from __future__ import annotations

import pytest

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.estimators.tabular import TabularEstimator
from nasforge.hardware.objectives import pareto_front
from nasforge.objective import parse_objective
from nasforge.strategies import create_strategy
from nasforge.testing.conformance import drive


def _latency(arch) -> float:
    return float(sum(arch.value.values()) + 1)


def test_the_archive_is_the_front_of_everything_told(grid_space, grid_table):
    objective = parse_objective("pareto:val_acc,latency_ms")
    strategy = create_strategy("mo-evolution", grid_space, objective=objective, seed=0, population_size=6, sample_size=3)
    table = TabularEstimator(grid_table)
    told = []
    for _ in range(60):
        arch = strategy.ask()
        result = Result({**table.evaluate(arch).metrics, "latency_ms": _latency(arch)})
        strategy.tell(arch, result)
        told.append((arch, objective.values(result)))
    assert len(strategy.population) == 6 and [a for a, _ in strategy.population] == [a for a, _ in told[-6:]]
    assert {a.key for a, _ in strategy.front} == {told[i][0].key for i in pareto_front([v for _, v in told])}
    assert len({a.key for a, _ in told}) == 60  # asked once each


def test_a_failed_result_never_becomes_a_parent(grid_space, grid_table):
    strategy = create_strategy("mo-evolution", grid_space, seed=0, population_size=2, sample_size=1)
    arch = strategy.ask()
    strategy.tell(arch, Result.failed("boom"))
    assert not strategy.population and not strategy.front
    drive(strategy, TabularEstimator(grid_table), 10)
    assert len(strategy.population) == 2


def test_bad_options_are_refused(grid_space):
    with pytest.raises(NasforgeError, match="sample_size"):
        create_strategy("mo-evolution", grid_space, population_size=4, sample_size=5)
    with pytest.raises(NasforgeError, match="archive_prob"):
        create_strategy("mo-evolution", grid_space, archive_prob=-0.1)
