"""Random search and regularized evolution: seeded, resumable state, and evolution actually learns."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge import NasforgeError
from nasforge.estimators.tabular import TabularEstimator
from nasforge.strategies import create_strategy
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.testing import drive


def test_evolution_beats_random_on_a_smooth_landscape(grid_space, grid_table):
    table = TabularEstimator(grid_table)

    def best_found(name, seed):
        strategy = create_strategy(name, grid_space, seed=seed, **({"population_size": 10, "sample_size": 3} if name == "evolution" else {}))
        return max(table.evaluate(arch).metrics["val_acc"] for arch in drive(strategy, table, 60))

    evo = np.mean([best_found("evolution", s) for s in range(10)])
    rnd = np.mean([best_found("random", s) for s in range(10)])
    assert evo > rnd  # measured: evolution reaches the optimum (120) on most seeds
    assert evo >= 115


def test_evolution_population_ages_out_oldest(grid_space, grid_table):
    table = TabularEstimator(grid_table)
    evo = RegularizedEvolution(grid_space, seed=0, population_size=4, sample_size=2)
    asked = drive(evo, table, 10)
    assert [a for a, _ in evo.population] == asked[-4:]


def test_evolution_ignores_failed_children(grid_space):
    from nasforge.estimators.base import Result

    evo = RegularizedEvolution(grid_space, seed=0, population_size=3, sample_size=2)
    arch = evo.ask()
    evo.tell(arch, Result.failed("boom"))
    assert len(evo.population) == 0


@pytest.mark.parametrize("kwargs, field", [({"population_size": 1}, "population_size"),
                                           ({"population_size": 5, "sample_size": 6}, "sample_size")])
def test_evolution_rejects_bad_settings(grid_space, kwargs, field):
    with pytest.raises(NasforgeError, match=field):
        RegularizedEvolution(grid_space, **kwargs)


def test_unknown_strategy_and_option_are_named(grid_space):
    with pytest.raises(NasforgeError, match=r"allowed: .*evolution, .*local, .*optuna:tpe, .*random, .*reinforce"):
        create_strategy("annealing", grid_space)
    with pytest.raises(NasforgeError, match="population"):
        create_strategy("evolution", grid_space, populaton_size=3)
